//! A binder factory's `config_schema` validates `spring.cloud.stream.<type>.*` when an app is
//! built (and the plan reads the binding's binder properties).

use std::sync::Arc;

use async_trait::async_trait;
use cloud_stream::binder::{
    BindError, Binder, BinderEnvironment, BinderFactory, Capabilities, ConsumerSpec, ProvisionPlan,
};
use cloud_stream::binder_memory::MemoryBinderFactory;
use cloud_stream::config::{Kind, Schema, SchemaNode};
use cloud_stream::{HandlerError, StreamAppBuilder};

/// The memory binder, declaring a schema with one consumer key `depth`.
struct WithSchema(MemoryBinderFactory);

#[async_trait]
impl BinderFactory for WithSchema {
    fn binder_type(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn config_schema(&self) -> Option<Schema> {
        Some(Schema::binder_section(
            SchemaNode::object([]),
            SchemaNode::object([("depth", SchemaNode::leaf(Kind::UnsignedInt))]),
            SchemaNode::object([]),
        ))
    }
    async fn create(
        &self,
        name: &str,
        environment: &BinderEnvironment,
    ) -> Result<Arc<dyn Binder>, BindError> {
        self.0.create(name, environment).await
    }
    fn plan_consumer(
        &self,
        destination: &str,
        _group: Option<&str>,
        spec: &ConsumerSpec,
    ) -> ProvisionPlan {
        ProvisionPlan {
            dlq: None,
            resources: vec![format!(
                "{destination} depth {}",
                spec.binder_properties["depth"]
            )],
        }
    }
}

fn app(yaml: &str) -> StreamAppBuilder {
    StreamAppBuilder::new()
        .binder_factory(Arc::new(WithSchema(MemoryBinderFactory::new())))
        .env(Default::default())
        .config_yaml(yaml)
        .consumer("x", |_: u32| async { Ok::<_, HandlerError>(()) })
}

#[tokio::test]
async fn unknown_binder_section_key_fails_with_suggestion() {
    let yaml = "spring.cloud.function.definition: x\nspring.cloud.stream.bindings.x-in-0.group: g\nspring.cloud.stream.memory.bindings.x-in-0.consumer.dpeth: 3\n";
    let err = match app(yaml).build().await {
        Ok(_) => panic!("unknown key must fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("dpeth") && err.contains("did you mean `depth`"),
        "{err}"
    );
}

#[tokio::test]
async fn known_binder_section_key_builds_and_reaches_the_plan() {
    let yaml = "spring.cloud.function.definition: x\nspring.cloud.stream.bindings.x-in-0: { destination: d, group: g }\nspring.cloud.stream.memory.bindings.x-in-0.consumer.depth: 3\n";
    let app = app(yaml).build().await.expect("builds");
    app.shutdown().await;

    let loaded = cloud_stream::config::ConfigLoader::new()
        .yaml_str("t", yaml)
        .env(Default::default())
        .binder_schema(
            "memory",
            WithSchema(MemoryBinderFactory::new())
                .config_schema()
                .expect("schema"),
        )
        .load()
        .expect("loads");
    let mut registry = cloud_stream::binder::BinderRegistry::new();
    registry.register(Arc::new(WithSchema(MemoryBinderFactory::new())));
    let plan = cloud_stream::plan::build_plan(
        &loaded.config,
        &registry,
        &[("x-in-0".to_owned(), cloud_stream::binding::Direction::Input)],
    )
    .expect("plan");
    let text = format!("{plan:?}");
    assert!(text.contains("d depth 3"), "{text}");
}
