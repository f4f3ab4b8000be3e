// A closure taking one tuple `(payload, headers)` instead of two arguments.
use stream_core::{HandlerError, Headers, StreamAppBuilder};

fn main() {
    let _ = StreamAppBuilder::new().consumer("log", |(line, _h): (String, Headers)| async move {
        let _ = line;
        Ok::<_, HandlerError>(())
    });
}
