// A handler argument that is neither a payload, `Message<T>`, nor an extractor.
use stream_core::{HandlerError, StreamAppBuilder};

struct NotSerde;

fn main() {
    let _ = StreamAppBuilder::new().consumer("log", |_: NotSerde| async { Ok::<_, HandlerError>(()) });
}
