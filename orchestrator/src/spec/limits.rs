//! Every limit on workflow input, in one place. Each is checked at parse time and tested at its
//! edge.
//!
//! The limits exist so that a hostile or broken file costs bounded memory and time to reject, and
//! so that a value never grows past what Kubernetes (where Testkube runs the same file) accepts.

/// Largest workflow file accepted, in bytes. Checked before any parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Most YAML documents (`---`-separated workflows) in one file.
pub const MAX_DOCUMENTS: usize = 64;

/// Most steps in one workflow, counted over the whole tree: `setup`, `steps`, `after`, nested
/// `steps` and the steps inside `parallel`.
pub const MAX_STEPS: usize = 1000;

/// Deepest nesting of steps: a top-level step is at depth 1, its nested steps at depth 2, and a
/// `parallel` block opens one more level.
pub const MAX_STEP_DEPTH: usize = 16;

/// Deepest nesting of YAML collections (maps and lists) in a document. Bounds the recursion of the
/// deserializer, the validator and dropping the tree.
pub const MAX_YAML_DEPTH: usize = 64;

/// Most YAML nodes in one document, counting every alias (`*name`) as a full copy of what it
/// refers to. Protects against "billion laughs" files whose aliases multiply a few lines into
/// gigabytes. The nodes held by anchors (`&name`) have a budget of the same size, since nested
/// anchors each keep their own copy.
pub const MAX_YAML_NODES: usize = 200_000;

/// Longest `metadata.name`: a DNS-1123 label, as Kubernetes names resources after it.
pub const MAX_NAME_CHARS: usize = 63;

/// Longest step name, in characters.
pub const MAX_STEP_NAME_CHARS: usize = 256;

/// Longest label value, and longest name part of a label or annotation key (after the optional
/// `prefix/`), as Kubernetes enforces.
pub const MAX_LABEL_CHARS: usize = 63;

/// Longest prefix (a DNS subdomain) of a label or annotation key, as Kubernetes enforces.
pub const MAX_LABEL_PREFIX_CHARS: usize = 253;

/// Longest expression, in characters: the inside of one `{{ ... }}`, or a whole `condition`.
pub const MAX_EXPRESSION_CHARS: usize = 4096;

/// Deepest nesting of an expression (parentheses, operators, calls). Bounds the recursion of the
/// expression parser and evaluator.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

/// Most parameters in one `config` block.
pub const MAX_CONFIG_PARAMETERS: usize = 100;

/// Longest config value written in the file (`default`, `example`, each `enum` value), in bytes.
pub const MAX_CONFIG_VALUE_BYTES: usize = 64 * 1024;
