// A handler result that cannot be encoded.
use stream_core::{HandlerError, StreamAppBuilder};

struct NotSerde;

fn main() {
    let _ = StreamAppBuilder::new().function("f", |s: String| async move {
        let _ = s;
        Ok::<_, HandlerError>(NotSerde)
    });
}
