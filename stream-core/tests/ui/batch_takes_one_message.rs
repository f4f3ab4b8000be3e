// A batch handler takes the batch as `Vec<T>` or `Vec<Message<T>>`, not one payload.
use stream_core::StreamAppBuilder;

fn main() {
    let _ = StreamAppBuilder::new().batch_consumer("store", |reading: f64| async move {
        println!("{reading}");
        Ok(())
    });
}
