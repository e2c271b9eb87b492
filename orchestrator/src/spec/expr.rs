//! Testkube's expression language, the subset testloop runs: `{{ ... }}` templates and conditions.
//!
//! Grammar, loosest binding first: `a ? b : c`, `||`, `&&`, `== !=`, `< <= > >=`, `+ -`,
//! `* / %`, unary `! -`, then literals (`1`, `1.5`, `'s'`, `"s"`, `true`, `false`, `null`), dotted
//! names (`config.workers`), calls (`shellquote(x)`) and parentheses.
//!
//! Values are JSON values. `+` concatenates when either side is a string; the other arithmetic
//! operators take numbers or numeric strings (config values often arrive as text). `==` compares a
//! string with a number or boolean by the other side's text, so `config.flag == "true"` holds for a
//! boolean parameter. `&&`, `||` and `!` give booleans by [`truthy`].

use serde_json::{Map, Number, Value};

use super::limits::{MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH};

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
    ast: Ast,
}

/// An expression travels as its source text (to the runner in a Kubernetes pod) and is parsed
/// again on arrival.
impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Expr::parse(&source).map_err(serde::de::Error::custom)
    }
}

/// What went wrong parsing or evaluating an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
}

impl ExprError {
    fn new(message: impl Into<String>) -> ExprError {
        ExprError {
            message: message.into(),
        }
    }

    fn at(position: usize, message: impl std::fmt::Display) -> ExprError {
        ExprError::new(format!("at position {position}: {message}"))
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    Literal(Value),
    Name(String),
    Not(Box<Ast>),
    Neg(Box<Ast>),
    /// Operators of one precedence level applied left to right: `a + b - c`. Kept flat, not as
    /// nested pairs, so that a long chain (`a && b && ...`, thousands of terms within the length
    /// limit) is evaluated and dropped without deep recursion.
    Chain(Box<Ast>, Vec<(BinOp, Ast)>),
    Ternary(Box<Ast>, Box<Ast>, Box<Ast>),
    Call(Function, Vec<Ast>),
}

/// The functions expressions may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    ShellQuote,
    ShellParse,
    String,
    Int,
    Float,
    Bool,
    Len,
    Trim,
    Lower,
    Upper,
    Join,
    Split,
}

const FUNCTIONS: &[(&str, Function, usize, usize)] = &[
    // name, function, fewest and most arguments
    ("shellquote", Function::ShellQuote, 1, usize::MAX),
    ("shellparse", Function::ShellParse, 1, 1),
    ("string", Function::String, 1, 1),
    ("int", Function::Int, 1, 1),
    ("float", Function::Float, 1, 1),
    ("bool", Function::Bool, 1, 1),
    ("len", Function::Len, 1, 1),
    ("trim", Function::Trim, 1, 1),
    ("lower", Function::Lower, 1, 1),
    ("upper", Function::Upper, 1, 1),
    ("join", Function::Join, 1, 2),
    ("split", Function::Split, 1, 2),
];

impl Expr {
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        let chars = source.chars().count();
        if chars > MAX_EXPRESSION_CHARS {
            return Err(ExprError::new(format!(
                "expression is {chars} characters long; the limit is {MAX_EXPRESSION_CHARS}"
            )));
        }
        let tokens = lex(source)?;
        let mut parser = ExprParser {
            tokens,
            next: 0,
            depth: 0,
        };
        if parser.peek().kind == Tok::End {
            return Err(ExprError::new("empty expression"));
        }
        let ast = parser.ternary()?;
        let token = parser.peek();
        if token.kind != Tok::End {
            return Err(ExprError::at(
                token.position,
                format!(
                    "expected an operator or the end of the expression, found {}",
                    token.kind.describe()
                ),
            ));
        }
        Ok(Expr {
            source: source.to_owned(),
            ast,
        })
    }

    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, ExprError> {
        eval(&self.ast, scope)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every dotted name the expression reads (`config.workers`, `index`), in order of
    /// appearance, without repeats.
    pub fn identifiers(&self) -> Vec<String> {
        let mut names = Vec::new();
        collect_names(&self.ast, &mut names);
        names
    }

    /// Whether the whole expression is one `shellquote(...)` call, whose result is already safe
    /// to paste into a shell script.
    pub fn is_shellquote_call(&self) -> bool {
        matches!(self.ast, Ast::Call(Function::ShellQuote, _))
    }
}

fn collect_names(ast: &Ast, names: &mut Vec<String>) {
    match ast {
        Ast::Literal(_) => {}
        Ast::Name(name) => {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Ast::Not(inner) | Ast::Neg(inner) => collect_names(inner, names),
        Ast::Chain(first, rest) => {
            collect_names(first, names);
            rest.iter()
                .for_each(|(_, operand)| collect_names(operand, names));
        }
        Ast::Ternary(a, b, c) => {
            collect_names(a, names);
            collect_names(b, names);
            collect_names(c, names);
        }
        Ast::Call(_, args) => args.iter().for_each(|arg| collect_names(arg, names)),
    }
}

/// Whether a value counts as true in a condition: `false`, `0`, `""`, `"false"` and `null` do
/// not; everything else (including empty lists and maps) does.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "false"),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The text of a value as a template shows it: strings as they are, numbers and booleans as
/// written, `null` as nothing, lists and maps as JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

/// A piece of a template: literal text, or an expression between `{{` and `}}`.
enum Piece<'t> {
    Text(&'t str),
    Expr(Expr),
}

/// Splits a template into text and expressions. The `}}` closing an expression is the first one
/// outside a quoted string, so `{{ "}}" }}` works.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, ExprError> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let inner_start = open + 2;
        let close = find_close(&rest[inner_start..]).ok_or_else(|| {
            ExprError::new(format!(
                "unterminated `{{{{` at position {}: no closing `}}}}`",
                template[..offset + open].chars().count() + 1
            ))
        })?;
        let inner = &rest[inner_start..inner_start + close];
        let expr = Expr::parse(inner.trim()).map_err(|e| {
            ExprError::new(format!("in `{{{{{}}}}}`: {}", shorten(inner), e.message))
        })?;
        out.push(Piece::Expr(expr));
        let consumed = inner_start + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    } else {
        text.to_owned()
    }
}

fn find_close(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'\'' || b == b'"' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// The expressions of every `{{ ... }}` in `text`, for validation.
pub fn template_expressions(text: &str) -> Result<Vec<Expr>, ExprError> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Expr(expr) => Some(expr),
            Piece::Text(_) => None,
        })
        .collect())
}

/// Replaces every `{{ expression }}` in `template`.
///
/// With [`Quoting::Shell`], each value is quoted for the place it lands in the script (see
/// [`ShellContext`]) so that it stays one literal piece of text whatever it contains. A value
/// whose expression is a bare `shellquote(...)` call is already quoted and is pasted as is, but
/// only outside quotes, where that is what the author meant; inside quotes it is escaped like any
/// other value. Places where no quoting is safe (after `$` or `\`, inside backquotes, `${...}` or a
/// here-document) are refused with an error.
pub fn render(template: &str, scope: &dyn Scope, quoting: Quoting) -> Result<String, ExprError> {
    let mut out = String::with_capacity(template.len());
    let mut shell = ShellContext::default();
    for piece in pieces(template)? {
        match piece {
            Piece::Text(text) => {
                out.push_str(text);
                if quoting == Quoting::Shell {
                    shell.advance(text);
                }
            }
            Piece::Expr(expr) => {
                let text = to_text(&expr.eval(scope)?);
                match quoting {
                    Quoting::Plain => out.push_str(&text),
                    Quoting::Shell => {
                        shell.insert(&mut out, &text, expr.is_shellquote_call(), expr.source())?;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Quotes a word for a POSIX shell; words made only of safe characters stay bare.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Where in a shell script the text so far has left us, tracked just well enough to quote a value
/// correctly: quotes, escapes, comments, `$(...)`, backquotes, `${...}` and here-documents.
#[derive(Debug, Default)]
struct ShellContext {
    /// Open constructs, innermost last; empty means unquoted at the top level.
    stack: Vec<Frame>,
    /// The previous character was an unescaped `\` (its escape applies to what comes next).
    escape: bool,
    /// The previous character was an unescaped `$` outside single quotes.
    dollar: bool,
    /// The previous character, to tell where a word starts (for `#` comments).
    previous: Option<char>,
    /// A `<<` was seen; the delimiter word is being read.
    heredoc_word: Option<HeredocWord>,
    /// Here-documents whose bodies start at the next newline.
    pending_heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// Inside `'...'`.
    Single,
    /// Inside `"..."`.
    Double,
    /// Inside `$(...)`; counts unmatched `(` to find the closing one.
    Subst(usize),
    /// Inside `` `...` ``.
    Backquote,
    /// Inside `${...}`.
    Brace,
    /// After `#` to the end of the line.
    Comment,
    /// Inside a here-document body; `line` is the current line so far.
    HeredocBody(Heredoc, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
}

#[derive(Debug, Default)]
struct HeredocWord {
    word: String,
    strip_tabs: bool,
    started: bool,
}

impl ShellContext {
    fn top(&self) -> Option<&Frame> {
        self.stack.last()
    }

    /// Unquoted shell syntax: top level or inside `$(...)`.
    fn in_code(&self) -> bool {
        matches!(self.top(), None | Some(Frame::Subst(_)))
    }

    fn advance(&mut self, text: &str) {
        for c in text.chars() {
            self.step(c);
        }
    }

    fn step(&mut self, c: char) {
        let escaped = std::mem::take(&mut self.escape);
        let after_dollar = std::mem::take(&mut self.dollar);
        let previous = self.previous.replace(c);
        match self.stack.last_mut() {
            Some(Frame::HeredocBody(heredoc, line)) => {
                if c == '\n' {
                    let body_line = if heredoc.strip_tabs {
                        line.trim_start_matches('\t')
                    } else {
                        line.as_str()
                    };
                    if body_line == heredoc.delimiter {
                        self.stack.pop();
                        self.start_next_heredoc();
                    } else {
                        line.clear();
                    }
                } else {
                    line.push(c);
                }
            }
            Some(Frame::Single) => {
                if c == '\'' {
                    self.stack.pop();
                }
            }
            Some(Frame::Comment) => {
                if c == '\n' {
                    self.stack.pop();
                    self.newline_in_code();
                }
            }
            Some(Frame::Double) => {
                if escaped {
                    return;
                }
                match c {
                    '\\' => self.escape = true,
                    '"' => {
                        self.stack.pop();
                    }
                    '`' => self.stack.push(Frame::Backquote),
                    '$' => self.dollar = true,
                    '(' if after_dollar => self.stack.push(Frame::Subst(0)),
                    '{' if after_dollar => self.stack.push(Frame::Brace),
                    _ => {}
                }
            }
            Some(Frame::Backquote) => {
                if escaped {
                    return;
                }
                match c {
                    '\\' => self.escape = true,
                    '`' => {
                        self.stack.pop();
                    }
                    _ => {}
                }
            }
            Some(Frame::Brace) => {
                if escaped {
                    return;
                }
                match c {
                    '\\' => self.escape = true,
                    '}' => {
                        self.stack.pop();
                    }
                    _ => {}
                }
            }
            None | Some(Frame::Subst(_)) => self.step_code(c, escaped, after_dollar, previous),
        }
    }

    fn step_code(&mut self, c: char, escaped: bool, after_dollar: bool, previous: Option<char>) {
        if c == '<'
            && self
                .heredoc_word
                .as_ref()
                .is_some_and(|w| w.word.is_empty() && !w.started && !w.strip_tabs)
        {
            // `<<<` is a here-string, not a here-document.
            self.heredoc_word = None;
            return;
        }
        if let Some(word) = self.heredoc_word.as_mut() {
            // Reading the delimiter after `<<`: quotes and backslashes only mark it as quoted,
            // which does not matter here since templates in any here-document body are refused.
            match c {
                '-' if !word.started && word.word.is_empty() && !word.strip_tabs => {
                    word.strip_tabs = true;
                    return;
                }
                ' ' | '\t' if !word.started => return,
                '\'' | '"' | '\\' => {
                    word.started = true;
                    return;
                }
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                    if let Some(word) = self.heredoc_word.take() {
                        self.pending_heredocs.push(Heredoc {
                            delimiter: word.word,
                            strip_tabs: word.strip_tabs,
                        });
                    }
                }
                _ => {
                    word.started = true;
                    word.word.push(c);
                    return;
                }
            }
        }
        if escaped {
            // An escaped character, or a line continuation: never syntax.
            return;
        }
        match c {
            '\\' => self.escape = true,
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '`' => self.stack.push(Frame::Backquote),
            '$' => self.dollar = true,
            '(' if after_dollar => self.stack.push(Frame::Subst(0)),
            '{' if after_dollar => self.stack.push(Frame::Brace),
            '(' => {
                if let Some(Frame::Subst(depth)) = self.stack.last_mut() {
                    *depth += 1;
                }
            }
            ')' => match self.stack.last_mut() {
                Some(Frame::Subst(0)) => {
                    self.stack.pop();
                }
                Some(Frame::Subst(depth)) => *depth -= 1,
                _ => {}
            },
            '#' if previous.is_none_or(|p| p.is_whitespace() || ";&|()<>".contains(p)) => {
                self.stack.push(Frame::Comment);
            }
            '<' if previous == Some('<') => {
                self.heredoc_word = Some(HeredocWord::default());
            }
            '\n' => self.newline_in_code(),
            _ => {}
        }
    }

    fn newline_in_code(&mut self) {
        if let Some(word) = self.heredoc_word.take() {
            self.pending_heredocs.push(Heredoc {
                delimiter: word.word,
                strip_tabs: word.strip_tabs,
            });
        }
        self.start_next_heredoc();
    }

    fn start_next_heredoc(&mut self) {
        if !self.pending_heredocs.is_empty() {
            let heredoc = self.pending_heredocs.remove(0);
            self.stack.push(Frame::HeredocBody(heredoc, String::new()));
        }
    }

    /// Appends `value` to `out`, quoted for the current place, and moves past it.
    fn insert(
        &mut self,
        out: &mut String,
        value: &str,
        already_quoted: bool,
        source: &str,
    ) -> Result<(), ExprError> {
        let refuse = |place: &str| {
            Err(ExprError::new(format!(
                "cannot insert `{{{{ {} }}}}` {place} of a shell script safely; pass the value in \
                 an environment variable instead",
                shorten(source)
            )))
        };
        if self.escape {
            return refuse("right after a backslash");
        }
        if self.dollar {
            return refuse("right after `$`");
        }
        if self.heredoc_word.is_some() {
            return refuse("as a here-document delimiter");
        }
        match self.top() {
            None | Some(Frame::Subst(_)) => {
                let quoted = if already_quoted {
                    value.to_owned()
                } else {
                    format!("'{}'", value.replace('\'', r"'\''"))
                };
                out.push_str(&quoted);
            }
            Some(Frame::Single) => out.push_str(&value.replace('\'', r"'\''")),
            Some(Frame::Double) => {
                for c in value.chars() {
                    if matches!(c, '\\' | '"' | '$' | '`') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Some(Frame::Comment) => {
                // A newline would end the comment and turn the rest of the value into commands.
                out.push_str(&value.replace(['\n', '\r'], " "));
            }
            Some(Frame::Backquote) => return refuse("inside backquotes"),
            Some(Frame::Brace) => return refuse("inside `${...}`"),
            Some(Frame::HeredocBody(..)) => return refuse("inside a here-document"),
        }
        // The inserted text is one complete word piece in the same context; only "the previous
        // character" changes, and any non-blank one means "inside a word".
        if self.in_code() || matches!(self.top(), Some(Frame::Comment)) {
            self.previous = Some('x');
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Name(String),
    /// `true`, `false`, `null`.
    Literal(Value),
    Punct(&'static str),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Float(f) => format!("number `{f}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Name(n) => format!("`{n}`"),
            Tok::Literal(v) => format!("`{v}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::End => "the end of the expression".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    /// 1-based character position in the expression.
    position: usize,
}

const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "(", ")", ",", "?", ":", "!", "-", "+", "*", "/", "%", "<",
    ">",
];

fn lex(source: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let kind = if let Ok(int) = text.parse::<i64>() {
                Tok::Int(int)
            } else if let Ok(float) = text.parse::<f64>() {
                Tok::Float(float)
            } else {
                return Err(ExprError::at(position, format!("`{text}` is not a number")));
            };
            tokens.push(Token { kind, position });
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() {
                let d = chars[i];
                let joins_segments = d == '.'
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_');
                if d.is_ascii_alphanumeric() || d == '_' || joins_segments {
                    i += 1;
                } else {
                    break;
                }
            }
            let name: String = chars[start..i].iter().collect();
            let kind = match name.as_str() {
                "true" => Tok::Literal(Value::Bool(true)),
                "false" => Tok::Literal(Value::Bool(false)),
                "null" => Tok::Literal(Value::Null),
                _ => Tok::Name(name),
            };
            tokens.push(Token { kind, position });
            continue;
        }
        if c == '\'' || c == '"' {
            let quote = c;
            let mut text = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(ExprError::at(
                        position,
                        format!("unterminated string: expected a closing {quote}"),
                    ));
                };
                i += 1;
                if d == quote {
                    break;
                }
                if d == '\\' {
                    let Some(&e) = chars.get(i) else { continue };
                    i += 1;
                    text.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                } else {
                    text.push(d);
                }
            }
            tokens.push(Token {
                kind: Tok::Str(text),
                position,
            });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let Some(punct) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
            return Err(ExprError::at(
                position,
                format!("unexpected character `{c}`"),
            ));
        };
        i += punct.chars().count();
        tokens.push(Token {
            kind: Tok::Punct(punct),
            position,
        });
    }
    tokens.push(Token {
        kind: Tok::End,
        position: chars.len() + 1,
    });
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------
// Parser

struct ExprParser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
}

impl ExprParser {
    fn peek(&self) -> &Token {
        // `lex` always ends with `End`, and `bump` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() - 1 {
            self.next += 1;
        }
        token
    }

    fn eat(&mut self, punct: &str) -> bool {
        if self.peek().kind == Tok::Punct(PUNCTS.iter().find(|p| **p == punct).map_or("", |p| p)) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), ExprError> {
        if self.eat(punct) {
            Ok(())
        } else {
            let token = self.peek();
            Err(ExprError::at(
                token.position,
                format!("expected `{punct}`, found {}", token.kind.describe()),
            ))
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return Err(ExprError::at(
                self.peek().position,
                format!("expression nested too deeply; the limit is {MAX_EXPRESSION_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn ternary(&mut self) -> Result<Ast, ExprError> {
        self.enter()?;
        let condition = self.binary(0)?;
        let ast = if self.eat("?") {
            let yes = self.ternary()?;
            self.expect(":")?;
            let no = self.ternary()?;
            Ast::Ternary(Box::new(condition), Box::new(yes), Box::new(no))
        } else {
            condition
        };
        self.depth -= 1;
        Ok(ast)
    }

    /// Binary operators by precedence level, loosest first.
    fn binary(&mut self, level: usize) -> Result<Ast, ExprError> {
        const LEVELS: &[&[(&str, BinOp)]] = &[
            &[("||", BinOp::Or)],
            &[("&&", BinOp::And)],
            &[("==", BinOp::Eq), ("!=", BinOp::Ne)],
            &[
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
            ],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
        ];
        let Some(operators) = LEVELS.get(level) else {
            return self.unary();
        };
        let first = self.binary(level + 1)?;
        let mut rest = Vec::new();
        'outer: loop {
            for (punct, op) in *operators {
                if self.eat(punct) {
                    rest.push((*op, self.binary(level + 1)?));
                    continue 'outer;
                }
            }
            break;
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Ast::Chain(Box::new(first), rest)
        })
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        self.enter()?;
        let ast = if self.eat("!") {
            Ast::Not(Box::new(self.unary()?))
        } else if self.eat("-") {
            Ast::Neg(Box::new(self.unary()?))
        } else {
            self.primary()?
        };
        self.depth -= 1;
        Ok(ast)
    }

    fn primary(&mut self) -> Result<Ast, ExprError> {
        let token = self.bump();
        match token.kind {
            Tok::Int(i) => Ok(Ast::Literal(Value::from(i))),
            Tok::Float(f) => Ok(Ast::Literal(
                Number::from_f64(f).map_or(Value::Null, Value::Number),
            )),
            Tok::Str(s) => Ok(Ast::Literal(Value::String(s))),
            Tok::Literal(value) => Ok(Ast::Literal(value)),
            Tok::Name(name) => {
                if !self.eat("(") {
                    return Ok(Ast::Name(name));
                }
                let Some(&(_, function, min, max)) =
                    FUNCTIONS.iter().find(|(known, ..)| *known == name)
                else {
                    let known: Vec<&str> = FUNCTIONS.iter().map(|(n, ..)| *n).collect();
                    return Err(ExprError::at(
                        token.position,
                        format!(
                            "unknown function `{name}`; known functions: {}",
                            known.join(", ")
                        ),
                    ));
                };
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.ternary()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                if args.len() < min || args.len() > max {
                    let wanted = match (min, max) {
                        (a, b) if a == b => format!("{a}"),
                        (a, usize::MAX) => format!("at least {a}"),
                        (a, b) => format!("{a} to {b}"),
                    };
                    return Err(ExprError::at(
                        token.position,
                        format!("`{name}` takes {wanted} argument(s), found {}", args.len()),
                    ));
                }
                Ok(Ast::Call(function, args))
            }
            Tok::Punct("(") => {
                let inner = self.ternary()?;
                self.expect(")")?;
                Ok(inner)
            }
            other => Err(ExprError::at(
                token.position,
                format!(
                    "expected a value, a name or `(`, found {}",
                    other.describe()
                ),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn eval(ast: &Ast, scope: &dyn Scope) -> Result<Value, ExprError> {
    match ast {
        Ast::Literal(value) => Ok(value.clone()),
        Ast::Name(name) => scope
            .resolve(name)
            .ok_or_else(|| ExprError::new(format!("unknown name `{name}`"))),
        Ast::Not(inner) => Ok(Value::Bool(!truthy(&eval(inner, scope)?))),
        Ast::Neg(inner) => match number(&eval(inner, scope)?, "-")? {
            Num::Int(i) => i
                .checked_neg()
                .map(Value::from)
                .ok_or_else(|| ExprError::new("integer overflow in `-`")),
            Num::Float(f) => Ok(float_value(-f)),
        },
        Ast::Ternary(condition, yes, no) => {
            if truthy(&eval(condition, scope)?) {
                eval(yes, scope)
            } else {
                eval(no, scope)
            }
        }
        Ast::Chain(first, rest) => {
            let mut value = eval(first, scope)?;
            for (op, operand) in rest {
                value = match op {
                    // Short-circuit: the right side is not evaluated when the left decides.
                    BinOp::And => Value::Bool(truthy(&value) && truthy(&eval(operand, scope)?)),
                    BinOp::Or => Value::Bool(truthy(&value) || truthy(&eval(operand, scope)?)),
                    _ => binary(*op, &value, &eval(operand, scope)?)?,
                };
            }
            Ok(value)
        }
        Ast::Call(function, args) => {
            let args = args
                .iter()
                .map(|arg| eval(arg, scope))
                .collect::<Result<Vec<_>, _>>()?;
            call(*function, &args)
        }
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

fn float_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn number(value: &Value, operator: &str) -> Result<Num, ExprError> {
    let parsed = match value {
        Value::Number(n) => n
            .as_i64()
            .map(Num::Int)
            .or_else(|| n.as_f64().map(Num::Float)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .map(Num::Int)
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(Num::Float))
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        ExprError::new(format!(
            "`{operator}` expects numbers, found {}",
            describe(value)
        ))
    })
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {}", super::yaml::quote_for_message(s)),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, ExprError> {
    let symbol = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Rem => "%",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::And => "&&",
        BinOp::Or => "||",
    };
    match op {
        BinOp::Eq => return Ok(Value::Bool(loose_eq(a, b))),
        BinOp::Ne => return Ok(Value::Bool(!loose_eq(a, b))),
        BinOp::Add if a.is_string() || b.is_string() => {
            return Ok(Value::String(to_text(a) + &to_text(b)));
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ordering = compare(a, b, symbol)?;
            return Ok(Value::Bool(match op {
                BinOp::Lt => ordering.is_lt(),
                BinOp::Le => ordering.is_le(),
                BinOp::Gt => ordering.is_gt(),
                _ => ordering.is_ge(),
            }));
        }
        _ => {}
    }
    let (x, y) = (number(a, symbol)?, number(b, symbol)?);
    let overflow = || ExprError::new(format!("integer overflow in `{symbol}`"));
    match (x, y) {
        (Num::Int(x), Num::Int(y)) => match op {
            BinOp::Add => x.checked_add(y).map(Value::from).ok_or_else(overflow),
            BinOp::Sub => x.checked_sub(y).map(Value::from).ok_or_else(overflow),
            BinOp::Mul => x.checked_mul(y).map(Value::from).ok_or_else(overflow),
            BinOp::Div | BinOp::Rem if y == 0 => Err(ExprError::new("division by zero")),
            BinOp::Div if x % y == 0 => Ok(Value::from(x / y)),
            #[allow(clippy::cast_precision_loss)]
            BinOp::Div => Ok(float_value(x as f64 / y as f64)),
            BinOp::Rem => x.checked_rem(y).map(Value::from).ok_or_else(overflow),
            _ => Err(ExprError::new(format!("`{symbol}` cannot apply here"))),
        },
        (x, y) => {
            let (x, y) = (x.as_f64(), y.as_f64());
            match op {
                BinOp::Add => Ok(float_value(x + y)),
                BinOp::Sub => Ok(float_value(x - y)),
                BinOp::Mul => Ok(float_value(x * y)),
                BinOp::Div | BinOp::Rem if y == 0.0 => Err(ExprError::new("division by zero")),
                BinOp::Div => Ok(float_value(x / y)),
                BinOp::Rem => Ok(float_value(x % y)),
                _ => Err(ExprError::new(format!("`{symbol}` cannot apply here"))),
            }
        }
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), other @ (Value::Number(_) | Value::Bool(_)))
        | (other @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => {
            match (number(other, "=="), number(&Value::String(s.clone()), "==")) {
                (Ok(x), Ok(y)) => x.as_f64() == y.as_f64(),
                _ => *s == to_text(other),
            }
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value, symbol: &str) -> Result<std::cmp::Ordering, ExprError> {
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return Ok(x.cmp(y));
    }
    let (x, y) = (number(a, symbol)?, number(b, symbol)?);
    x.as_f64()
        .partial_cmp(&y.as_f64())
        .ok_or_else(|| ExprError::new(format!("`{symbol}` cannot compare NaN")))
}

fn string_arg<'v>(
    value: &'v Value,
    function: &str,
) -> Result<std::borrow::Cow<'v, str>, ExprError> {
    match value {
        Value::String(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Number(_) | Value::Bool(_) | Value::Null => {
            Ok(std::borrow::Cow::Owned(to_text(value)))
        }
        _ => Err(ExprError::new(format!(
            "`{function}` expects a string, found {}",
            describe(value)
        ))),
    }
}

fn call(function: Function, args: &[Value]) -> Result<Value, ExprError> {
    let first = args.first().unwrap_or(&Value::Null);
    match function {
        Function::ShellQuote => {
            let mut words = Vec::new();
            for arg in args {
                match arg {
                    Value::Array(items) => words.extend(items.iter().map(to_text)),
                    other => words.push(to_text(other)),
                }
            }
            Ok(Value::String(
                words
                    .iter()
                    .map(|w| shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            ))
        }
        Function::ShellParse => Ok(Value::Array(
            shell_parse(&string_arg(first, "shellparse")?)?
                .into_iter()
                .map(Value::String)
                .collect(),
        )),
        Function::String => Ok(Value::String(to_text(first))),
        Function::Int => match first {
            Value::Bool(b) => Ok(Value::from(i64::from(*b))),
            other => match number(other, "int")? {
                Num::Int(i) => Ok(Value::from(i)),
                #[allow(clippy::cast_possible_truncation)]
                Num::Float(f) if f.is_finite() && f.abs() < 9.2e18 => {
                    Ok(Value::from(f.trunc() as i64))
                }
                Num::Float(_) => Err(ExprError::new("`int` argument is out of range")),
            },
        },
        Function::Float => Ok(float_value(number(first, "float")?.as_f64())),
        Function::Bool => Ok(Value::Bool(truthy(first))),
        Function::Len => match first {
            Value::Array(items) => Ok(Value::from(items.len())),
            Value::Object(map) => Ok(Value::from(map.len())),
            other => Ok(Value::from(string_arg(other, "len")?.chars().count())),
        },
        Function::Trim => Ok(Value::String(string_arg(first, "trim")?.trim().to_owned())),
        Function::Lower => Ok(Value::String(string_arg(first, "lower")?.to_lowercase())),
        Function::Upper => Ok(Value::String(string_arg(first, "upper")?.to_uppercase())),
        Function::Join => {
            let separator = match args.get(1) {
                Some(sep) => string_arg(sep, "join")?.into_owned(),
                None => ",".to_owned(),
            };
            match first {
                Value::Array(items) => Ok(Value::String(
                    items
                        .iter()
                        .map(to_text)
                        .collect::<Vec<_>>()
                        .join(&separator),
                )),
                other => Err(ExprError::new(format!(
                    "`join` expects a list, found {}",
                    describe(other)
                ))),
            }
        }
        Function::Split => {
            let text = string_arg(first, "split")?;
            let separator = match args.get(1) {
                Some(sep) => string_arg(sep, "split")?.into_owned(),
                None => ",".to_owned(),
            };
            if separator.is_empty() {
                return Err(ExprError::new("`split` needs a non-empty separator"));
            }
            Ok(Value::Array(
                text.split(separator.as_str())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ))
        }
    }
}

/// Splits a command line into words the way a POSIX shell would for simple input: blanks
/// separate words, quotes and backslashes protect. Anything that would need a shell to run
/// (expansions, operators) is refused rather than misread.
fn shell_parse(text: &str) -> Result<Vec<String>, ExprError> {
    let unsupported = |c: char| {
        ExprError::new(format!(
            "`shellparse`: `{c}` is not supported (expansions and operators need a shell)"
        ))
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(next) => word.push(next),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(d) => word.push(d),
                        None => return Err(ExprError::new("`shellparse`: unterminated `'`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('\\' | '"' | '$' | '`')) => word.push(e),
                            Some('\n') => {}
                            Some(e) => {
                                word.push('\\');
                                word.push(e);
                            }
                            None => return Err(ExprError::new("`shellparse`: unterminated `\"`")),
                        },
                        Some(d @ ('$' | '`')) => return Err(unsupported(d)),
                        Some(d) => word.push(d),
                        None => return Err(ExprError::new("`shellparse`: unterminated `\"`")),
                    }
                }
            }
            '$' | '`' | '|' | '&' | ';' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '#' | '~'
                if !in_word || matches!(c, '$' | '`' | '|' | '&' | ';' | '<' | '>' | '(' | ')') =>
            {
                return Err(unsupported(c));
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A [`Scope`] over a JSON object whose keys are the full dotted names; handy for tests and for
/// callers that already have flat values.
#[derive(Debug, Default, Clone)]
pub struct MapScope(pub Map<String, Value>);

impl Scope for MapScope {
    fn resolve(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }
}

impl<const N: usize> From<[(&str, Value); N]> for MapScope {
    fn from(entries: [(&str, Value); N]) -> MapScope {
        let mut map = Map::new();
        for (name, value) in entries {
            map.insert(name.to_owned(), value);
        }
        MapScope(map)
    }
}
