//! Testkube's expression language, the subset testloop runs: `{{ ... }}` templates and conditions.

use serde_json::Value;

/// Something an expression can read: `config.x`, `env.X`, `execution.id`, `passed`, `failed`,
/// `always`.
pub trait Scope {
    /// The value of a dotted name, or `None` when the name is unknown.
    fn resolve(&self, name: &str) -> Option<Value>;
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
}

/// What went wrong parsing or evaluating an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
}

/// How a rendered value is embedded in its surrounding text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Verbatim: environment values, exec-form arguments, paths.
    Plain,
    /// Inside a shell script: each value is quoted for the shell context it lands in, so that
    /// no value can break out of it.
    Shell,
}

impl Expr {
    pub fn parse(_source: &str) -> Result<Expr, ExprError> {
        unimplemented!("Expr::parse")
    }

    pub fn eval(&self, _scope: &dyn Scope) -> Result<Value, ExprError> {
        unimplemented!("Expr::eval")
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Whether a value counts as true in a condition.
pub fn truthy(_value: &Value) -> bool {
    unimplemented!("truthy")
}

/// Replaces every `{{ expression }}` in `template`.
pub fn render(_template: &str, _scope: &dyn Scope, _quoting: Quoting) -> Result<String, ExprError> {
    unimplemented!("render")
}
