//! The routing function bound as `functionRouter-in-0`: picks the function for each message.
//!
//! The function name comes from, in order: the message header `spring.cloud.function.definition`,
//! the configured `spring.cloud.function.routing-expression`, or the message header
//! `spring.cloud.function.routing-expression` (an expression evaluated against the message).
//! A message that routes to no registered function is a permanent error (dead-lettered).

use std::sync::Arc;

use super::error::HandlerError;
use super::handler::{failed, BoxFuture, CallContext, CallResult, ErasedFunction, Invocation};
use super::registry::{FunctionRegistry, Handler};
use crate::binding::parse_definition;
use crate::expr::{EvalContext, Expression};
use crate::message::RawMessage;

/// Header naming the target function directly.
pub const DEFINITION_HEADER: &str = "spring.cloud.function.definition";
/// Header carrying a routing expression.
pub const ROUTING_EXPRESSION_HEADER: &str = "spring.cloud.function.routing-expression";

/// Routes each message to a registered function or consumer.
pub struct RouterFunction {
    registry: Arc<FunctionRegistry>,
    expression: Option<Expression>,
}

impl RouterFunction {
    /// A router over `registry` using `expression` (the configured routing expression).
    pub fn new(registry: Arc<FunctionRegistry>, expression: Option<Expression>) -> Self {
        RouterFunction {
            registry,
            expression,
        }
    }

    fn target(&self, message: &RawMessage) -> Result<String, HandlerError> {
        if let Some(name) = message.headers.get_str(DEFINITION_HEADER) {
            return Ok(name.trim().to_owned());
        }
        let from_header;
        let expression = match &self.expression {
            Some(e) => e,
            None => {
                let src = message
                    .headers
                    .get_str(ROUTING_EXPRESSION_HEADER)
                    .ok_or_else(|| {
                        HandlerError::permanent(
                            "cannot route: no routing expression is configured and the message has neither a `spring.cloud.function.definition` nor a `spring.cloud.function.routing-expression` header",
                        )
                    })?;
                from_header = Expression::parse(src).map_err(HandlerError::permanent)?;
                &from_header
            }
        };
        let payload = if expression.uses_payload() {
            Some(
                serde_json::from_slice::<serde_json::Value>(&message.payload)
                    .map_err(HandlerError::decode)?,
            )
        } else {
            None
        };
        let ctx = EvalContext {
            headers: &message.headers,
            payload: payload.as_ref(),
        };
        expression
            .evaluate_to_key(&ctx)
            .map_err(HandlerError::permanent)?
            .ok_or_else(|| {
                HandlerError::permanent(format!(
                    "routing expression `{}` evaluated to null",
                    expression.source()
                ))
            })
    }
}

impl ErasedFunction for RouterFunction {
    fn call(&self, input: Invocation<'_>, ctx: &Arc<CallContext>) -> BoxFuture<CallResult> {
        let resolved = self.target(input.message).and_then(|name| {
            let defs = parse_definition(&name).map_err(HandlerError::permanent)?;
            let def = match defs.as_slice() {
                [one] => one,
                _ => {
                    return Err(HandlerError::permanent(format!(
                        "routing target `{name}` must name exactly one function"
                    )))
                }
            };
            let pipeline = self
                .registry
                .resolve(def)
                .map_err(HandlerError::permanent)?;
            if !pipeline.has_input() {
                return Err(HandlerError::permanent(format!(
                    "routing target `{name}` is a supplier"
                )));
            }
            Ok(pipeline)
        });
        match resolved {
            Ok(pipeline) => pipeline.apply(input, ctx),
            Err(e) => failed(e),
        }
    }
}

impl From<RouterFunction> for Handler {
    fn from(r: RouterFunction) -> Self {
        Handler::Function(Arc::new(r))
    }
}
