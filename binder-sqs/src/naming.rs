//! Topic and queue names (docs/architecture.md §7): topic `<prefix><destination>`, group queue
//! `<prefix><destination>-<group>`, DLQ `<queue>-dlq`, FIFO names end in `.fifo`.

/// The longest SQS queue name (SNS topics allow 256; the shorter limit is used for both).
pub const MAX_QUEUE_NAME: usize = 80;

/// Replaces every character SQS/SNS names do not allow (anything but ASCII letters, digits,
/// `-` and `_`) with `-`, and strips a trailing `.fifo` (added back by [`fifo_name`]).
pub fn sanitize(raw: &str) -> String {
    let base = raw.strip_suffix(".fifo").unwrap_or(raw);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Whether a destination name asks for FIFO by itself (`orders.fifo`).
pub fn is_fifo_name(raw: &str) -> bool {
    raw.ends_with(".fifo")
}

/// `base` with the `.fifo` suffix when `fifo`.
pub fn fifo_name(base: &str, fifo: bool) -> String {
    if fifo {
        format!("{base}.fifo")
    } else {
        base.to_owned()
    }
}

/// Names of one binding's resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The SNS topic (sns mode) or `None` (sqs mode).
    pub topic: Option<String>,
    /// The SQS queue consumed or sent to.
    pub queue: String,
    /// The dead-letter queue.
    pub dlq: String,
}

/// The topic of `destination`.
pub fn topic(prefix: &str, destination: &str, fifo: bool) -> String {
    fifo_name(&format!("{prefix}{}", sanitize(destination)), fifo)
}

/// The queue of a destination used as a queue (sqs mode).
pub fn direct_queue(prefix: &str, destination: &str, fifo: bool) -> String {
    fifo_name(&format!("{prefix}{}", sanitize(destination)), fifo)
}

/// The queue of group `group` on topic `destination` (sns mode); partitioned consumers get
/// one queue per instance (`-<index>`).
pub fn group_queue(
    prefix: &str,
    destination: &str,
    group: &str,
    instance: Option<u32>,
    fifo: bool,
) -> String {
    let mut base = format!("{prefix}{}-{}", sanitize(destination), sanitize(group));
    if let Some(i) = instance {
        base.push_str(&format!("-{i}"));
    }
    fifo_name(&base, fifo)
}

/// The DLQ of `queue` (`<queue>-dlq`, FIFO when the queue is).
pub fn dlq(queue: &str) -> String {
    match queue.strip_suffix(".fifo") {
        Some(base) => format!("{base}-dlq.fifo"),
        None => format!("{queue}-dlq"),
    }
}

/// Checks the SQS length limit.
pub fn check_len(name: &str) -> Result<(), String> {
    if name.len() > MAX_QUEUE_NAME {
        Err(format!(
            "queue name `{name}` is {} characters; SQS allows {MAX_QUEUE_NAME}",
            name.len()
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(topic("", "orders.created", false), "orders-created");
        assert_eq!(topic("dev-", "orders.fifo", true), "dev-orders.fifo");
        assert_eq!(
            group_queue("", "orders", "stock", None, false),
            "orders-stock"
        );
        assert_eq!(
            group_queue("", "orders", "stock", Some(1), true),
            "orders-stock-1.fifo"
        );
        assert_eq!(dlq("orders-stock"), "orders-stock-dlq");
        assert_eq!(dlq("orders-stock.fifo"), "orders-stock-dlq.fifo");
        assert!(check_len(&"x".repeat(81)).is_err());
    }
}
