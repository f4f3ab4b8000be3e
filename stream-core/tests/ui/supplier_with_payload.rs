// A supplier has no input message, so it cannot take a payload.
use stream_core::{HandlerError, StreamAppBuilder};

fn main() {
    let _ = StreamAppBuilder::new().supplier("ticks", |n: u64| async move { Ok::<_, HandlerError>(n) });
}
