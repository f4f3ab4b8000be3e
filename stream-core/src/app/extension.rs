//! Extensions that run beside the bindings: started once the application runs, stopped when it
//! shuts down. The actuator (crate `stream-actuator`) is one; each reads its own settings from
//! [`RunningApp::properties`].

use async_trait::async_trait;

use super::RunningApp;
use crate::error::Error;

/// Kept by the running application until it shuts down; dropping it stops the extension.
pub type ExtensionGuard = Box<dyn std::any::Any + Send + Sync>;

/// Something started with the application.
#[async_trait]
pub trait AppExtension: Send + Sync {
    /// Called once the configuration is loaded, before anything is bound (e.g. to install a
    /// metrics recorder before the bindings register their metrics).
    fn prepare(&self, properties: &serde_json::Value) -> Result<(), Error> {
        let _ = properties;
        Ok(())
    }

    /// Starts, reading what it needs from `app` (its properties, bindings and plan); `None`
    /// when the configuration leaves it off. An error fails [`super::StreamAppBuilder::build`]
    /// (the bindings already started are shut down first).
    async fn start(&self, app: &RunningApp) -> Result<Option<ExtensionGuard>, Error>;
}
