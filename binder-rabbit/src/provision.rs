//! Idempotent declaration of exchanges, group queues, anonymous queues and dead-letter queues.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::Channel;
use stream_core::binder::BindError;
use stream_core::message::RawMessage;

use crate::connection::{boxed, Live};
use crate::headers::from_delivery;
use crate::props::{ExchangeProps, QueueProps};

/// What a consumer reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePlan {
    /// The destination exchange.
    pub exchange: String,
    /// The queue name.
    pub queue: String,
    /// Binding keys of the queue on the exchange.
    pub routing_keys: Vec<String>,
    /// Whether the queue is durable (named group) or exclusive/auto-delete (anonymous).
    pub durable: bool,
    /// The dead-letter exchange and routing key, when a DLQ is bound.
    pub dead_letter: Option<DeadLetterPlan>,
}

/// Where dead letters of one queue go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterPlan {
    /// The dead-letter exchange (direct).
    pub exchange: String,
    /// The routing key the DLQ is bound with.
    pub routing_key: String,
    /// The DLQ name.
    pub queue: String,
}

fn provision_err(resource: String, e: lapin::Error) -> BindError {
    BindError::Provision {
        resource,
        source: boxed(&e),
    }
}

/// Declares the destination exchange (unless `declare-exchange: false`).
pub async fn declare_exchange(
    ch: &Channel,
    name: &str,
    props: &ExchangeProps,
) -> Result<(), BindError> {
    if !props.declare {
        return Ok(());
    }
    ch.exchange_declare(
        ShortString::from(name),
        props.kind.kind(),
        ExchangeDeclareOptions {
            durable: props.durable,
            auto_delete: props.auto_delete,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(|e| provision_err(format!("exchange {name} ({})", props.kind.name()), e))
}

/// The group queue plan for `destination`/`group` (partitioned consumers get
/// `<queue>-<index>` bound with `<destination>-<index>`).
pub fn group_plan(
    destination: &str,
    group: &str,
    partition: Option<u32>,
    props: &QueueProps,
) -> QueuePlan {
    let exchange = props.exchange_name(destination);
    let mut queue = props.queue_name(destination, group);
    let routing_keys = match partition {
        Some(i) => {
            queue = format!("{queue}-{i}");
            vec![format!(
                "{}-{i}",
                props
                    .binding_routing_key
                    .clone()
                    .unwrap_or_else(|| destination.to_owned())
            )]
        }
        None => vec![props
            .binding_routing_key
            .clone()
            .unwrap_or_else(|| "#".to_owned())],
    };
    let dead_letter = props.auto_bind_dlq.then(|| DeadLetterPlan {
        exchange: props.dlx_name(),
        routing_key: props
            .dl_routing_key
            .clone()
            .unwrap_or_else(|| queue.clone()),
        queue: props.dlq_name_of(&queue),
    });
    QueuePlan {
        exchange,
        queue,
        routing_keys,
        durable: true,
        dead_letter,
    }
}

fn queue_args(props: &QueueProps, dead_letter: Option<&DeadLetterPlan>) -> FieldTable {
    let mut args = FieldTable::default();
    let long = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    let num = |n: u64| AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX));
    if let Some(dl) = dead_letter {
        args.insert("x-dead-letter-exchange".into(), long(&dl.exchange));
        args.insert("x-dead-letter-routing-key".into(), long(&dl.routing_key));
    }
    if let Some(n) = props.ttl {
        args.insert("x-message-ttl".into(), num(n));
    }
    if let Some(n) = props.max_length {
        args.insert("x-max-length".into(), num(n));
    }
    if let Some(n) = props.max_length_bytes {
        args.insert("x-max-length-bytes".into(), num(n));
    }
    if let Some(n) = props.expires {
        args.insert("x-expires".into(), num(n));
    }
    if props.quorum.enabled {
        args.insert("x-queue-type".into(), long("quorum"));
        if let Some(n) = props.quorum.delivery_limit {
            args.insert("x-delivery-limit".into(), num(n));
        }
    }
    args
}

/// The wait queue of `queue` for delayed redeliveries after `delay`.
pub fn wait_queue(queue: &str, delay: std::time::Duration) -> String {
    format!("{queue}.wait-{}ms", delay.as_millis())
}

/// Declares the durable wait queue of `queue` for `delay`: its messages expire after `delay`
/// and are dead-lettered through the default exchange back to `queue` (a queue-wide TTL, so
/// they expire in the order they came).
pub async fn declare_wait_queue(
    ch: &Channel,
    queue: &str,
    delay: std::time::Duration,
) -> Result<(), BindError> {
    let name = wait_queue(queue, delay);
    let long = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    let mut args = FieldTable::default();
    let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
    args.insert("x-dead-letter-exchange".into(), long(""));
    args.insert("x-dead-letter-routing-key".into(), long(queue));
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(ShortString::from(name.as_str()), options, args)
        .await
        .map(|_| ())
        .map_err(|e| provision_err(format!("queue {name}"), e))
}

/// Declares a durable group queue (joining it as it is when it exists with other arguments),
/// its DLX and DLQ (when `auto-bind-dlq`), and binds it. An existing queue may have been
/// declared by another application, maybe a Spring one with other arguments: declaring it
/// with ours then fails with `PRECONDITION_FAILED` (on a channel of its own, which that
/// closes), and the queue is joined as it is. Declaring first, rather than asking whether the
/// queue exists, keeps the usual start (a new queue) free of a failed passive declaration,
/// which lapin logs as an error. A new queue carries the dead-letter arguments only when the
/// broker dead-letters (`broker_dead_letters`, i.e. `republish-to-dlq: false`): otherwise the
/// runtime republishes dead letters itself, and a queue without them is what a Spring
/// application with default settings declares too.
pub async fn declare_group_queue(
    live: &Live,
    ch: &Channel,
    plan: &QueuePlan,
    props: &QueueProps,
    single_active_consumer: bool,
    broker_dead_letters: bool,
) -> Result<(), BindError> {
    let dead_letter = plan.dead_letter.as_ref().filter(|_| broker_dead_letters);
    let mut args = queue_args(props, dead_letter);
    if single_active_consumer {
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    let options = QueueDeclareOptions {
        durable: plan.durable,
        ..Default::default()
    };
    let err = |e| provision_err(format!("queue {}", plan.queue), e);
    let own = live.channel().await.map_err(err)?;
    match own
        .queue_declare(ShortString::from(plan.queue.as_str()), options, args)
        .await
    {
        Ok(_) => {
            let _ = own.close(200, "declared".into()).await;
        }
        Err(e) if precondition_failed(&e) => {
            tracing::info!(queue = %plan.queue, "the group queue exists with other arguments; joined as it is");
        }
        Err(e) => return Err(err(e)),
    }
    if let Some(dl) = &plan.dead_letter {
        declare_dead_letter_queue(ch, dl, props).await?;
    }
    bind(ch, plan).await
}

/// Whether the broker refused a declaration because the resource exists with other
/// arguments (`PRECONDITION_FAILED`, 406).
fn precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if p.get_id() == 406)
}

/// The ready (not delivered) messages of `queue`, `None` when it does not exist or the broker
/// cannot be asked; asked with a passive declaration on a channel of its own (a failed one
/// closes the channel it was made on).
pub async fn ready_messages(live: &Live, queue: &str) -> Option<u64> {
    let probe = live.channel().await.ok()?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let declared = probe
        .queue_declare(ShortString::from(queue), passive, FieldTable::default())
        .await
        .ok()?;
    let _ = probe.close(200, "checked".into()).await;
    Some(u64::from(declared.message_count()))
}

/// Up to `max` messages of `queue`, oldest first, by `basic.get` on a channel of its own:
/// acked when `take`, else never acked, so closing the channel puts them back in order
/// (marked redelivered).
pub async fn get_up_to(
    live: &Live,
    queue: &str,
    max: usize,
    take: bool,
) -> Result<Vec<RawMessage>, BindError> {
    let err = |e: lapin::Error| provision_err(format!("queue {queue}"), e);
    let ch = live.channel().await.map_err(err)?;
    let mut out = Vec::new();
    let mut failed = None;
    while out.len() < max {
        let got = ch
            .basic_get(ShortString::from(queue), BasicGetOptions::default())
            .await;
        let d = match got {
            Ok(Some(m)) => m.delivery,
            Ok(None) => break,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        if take {
            if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
                failed = Some(e);
                break;
            }
        }
        out.push(from_delivery(d.data, &d.properties));
    }
    let _ = ch.close(200, "done".into()).await;
    match failed {
        Some(e) => Err(err(e)),
        None => Ok(out),
    }
}

/// The dead-letter exchange (direct, durable), the DLQ and their binding.
async fn declare_dead_letter_queue(
    ch: &Channel,
    dl: &DeadLetterPlan,
    props: &QueueProps,
) -> Result<(), BindError> {
    ch.exchange_declare(
        ShortString::from(dl.exchange.as_str()),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(|e| provision_err(format!("dead-letter exchange {}", dl.exchange), e))?;
    let mut dlq_args = FieldTable::default();
    if props.quorum.enabled {
        dlq_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from(&b"quorum"[..])),
        );
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(ShortString::from(dl.queue.as_str()), durable, dlq_args)
        .await
        .map_err(|e| provision_err(format!("queue {}", dl.queue), e))?;
    ch.queue_bind(
        ShortString::from(dl.queue.as_str()),
        ShortString::from(dl.exchange.as_str()),
        ShortString::from(dl.routing_key.as_str()),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| provision_err(format!("binding {} -> {}", dl.exchange, dl.queue), e))
}

/// Declares an exclusive, auto-delete queue (server-named unless `name` is given) and binds it;
/// returns its name.
pub async fn declare_anonymous_queue(
    ch: &Channel,
    name: &str,
    plan: &QueuePlan,
    props: &QueueProps,
) -> Result<String, BindError> {
    // Exclusive queues cannot be quorum queues: keep only the classic arguments.
    let mut args = FieldTable::default();
    for (k, v) in queue_args(props, None).inner() {
        if k.as_str() != "x-queue-type" && k.as_str() != "x-delivery-limit" {
            args.insert(k.clone(), v.clone());
        }
    }
    let q = ch
        .queue_declare(
            ShortString::from(name),
            QueueDeclareOptions {
                durable: false,
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map_err(|e| provision_err(format!("anonymous queue {name}"), e))?;
    let queue = q.name().as_str().to_owned();
    let mut p = plan.clone();
    p.queue = queue.clone();
    bind(ch, &p).await?;
    Ok(queue)
}

async fn bind(ch: &Channel, plan: &QueuePlan) -> Result<(), BindError> {
    for key in &plan.routing_keys {
        ch.queue_bind(
            ShortString::from(plan.queue.as_str()),
            ShortString::from(plan.exchange.as_str()),
            ShortString::from(key.as_str()),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| {
            provision_err(
                format!("binding {} -> {} ({key})", plan.exchange, plan.queue),
                e,
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::props::ConsumerProps;
    use stream_core::binder::ConsumerSpec;

    #[test]
    fn plans() {
        let props = ConsumerProps::parse(&ConsumerSpec {
            binding: "x".into(),
            binder_properties: serde_json::json!({}),
            ..Default::default()
        })
        .unwrap();
        let p = group_plan("orders", "stock", None, &props.queue);
        assert_eq!(p.queue, "orders.stock");
        assert_eq!(p.routing_keys, vec!["#".to_owned()]);
        let dl = p.dead_letter.unwrap();
        assert_eq!(
            (
                dl.exchange.as_str(),
                dl.queue.as_str(),
                dl.routing_key.as_str()
            ),
            ("DLX", "orders.stock.dlq", "orders.stock")
        );
        let p = group_plan("orders", "stock", Some(1), &props.queue);
        assert_eq!(p.queue, "orders.stock-1");
        assert_eq!(p.routing_keys, vec!["orders-1".to_owned()]);
    }
}
