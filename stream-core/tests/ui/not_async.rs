// A handler that does not return a future of `Result<_, HandlerError>`.
use stream_core::StreamAppBuilder;

fn main() {
    let _ = StreamAppBuilder::new().consumer("log", |line: String| println!("{line}"));
}
