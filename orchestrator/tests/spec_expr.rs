//! The expression language: precedence, functions, errors, truthiness, and shell quoting proven
//! against a real `/bin/sh`.

use std::process::Command;

use serde_json::{Value, json};
use testloop_orchestrator::spec::expr::{
    Expr, MapScope, Quoting, Scope, render, template_expressions, truthy,
};

fn scope() -> MapScope {
    MapScope::from([
        ("config.workers", json!(3)),
        ("config.name", json!("World")),
        ("config.ratio", json!(1.5)),
        ("config.flag", json!(true)),
        ("config.list", json!(["a", "b c"])),
        ("env.HOME", json!("/home/me")),
        ("execution.id", json!("01J0")),
        ("index", json!(1)),
        ("count", json!(4)),
        ("passed", json!(true)),
        ("failed", json!(false)),
    ])
}

fn eval(source: &str) -> Value {
    Expr::parse(source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
        .eval(&scope())
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn error(source: &str) -> String {
    match Expr::parse(source) {
        Err(e) => e.message,
        Ok(expr) => expr.eval(&scope()).expect_err(source).message,
    }
}

#[test]
fn precedence_and_associativity() {
    assert_eq!(eval("1 + 2 * 3"), json!(7));
    assert_eq!(eval("(1 + 2) * 3"), json!(9));
    assert_eq!(eval("10 - 4 - 3"), json!(3));
    assert_eq!(eval("20 / 2 / 5"), json!(2));
    assert_eq!(eval("7 % 4 * 2"), json!(6));
    assert_eq!(eval("-2 * -3"), json!(6));
    assert_eq!(eval("1 + 2 == 3 && 2 < 3"), json!(true));
    assert_eq!(eval("true || false && false"), json!(true));
    assert_eq!(eval("!false && !0"), json!(true));
    assert_eq!(eval("1 < 2 == true"), json!(true));
    assert_eq!(eval("false ? 1 : true ? 2 : 3"), json!(2));
    assert_eq!(eval("index + 1 < count ? 'more' : 'last'"), json!("more"));
}

#[test]
fn values_and_names() {
    assert_eq!(eval("config.workers * 2"), json!(6));
    assert_eq!(eval("config.ratio * 2"), json!(3.0));
    assert_eq!(eval("7 / 2"), json!(3.5));
    assert_eq!(eval("'Hello, ' + config.name"), json!("Hello, World"));
    assert_eq!(eval("\"n=\" + 5"), json!("n=5"));
    assert_eq!(eval("'a\\'b'"), json!("a'b"));
    assert_eq!(eval("null"), json!(null));
    assert_eq!(eval(".5 + 1e1"), json!(10.5));
    assert_eq!(eval("config.flag == 'true'"), json!(true));
    assert_eq!(eval("'3' == config.workers"), json!(true));
    assert_eq!(eval("'10' > 9"), json!(true));
    assert_eq!(eval("'b' > 'a'"), json!(true));
    assert_eq!(eval("passed && !failed"), json!(true));
    assert_eq!(eval("execution.id"), json!("01J0"));
}

#[test]
fn functions() {
    assert_eq!(eval("string(config.workers) + 'x'"), json!("3x"));
    assert_eq!(eval("int('42') + 1"), json!(43));
    assert_eq!(eval("int(3.9)"), json!(3));
    assert_eq!(eval("float('2.5')"), json!(2.5));
    assert_eq!(eval("bool('false')"), json!(false));
    assert_eq!(eval("bool('x')"), json!(true));
    assert_eq!(eval("len('héllo')"), json!(5));
    assert_eq!(eval("len(config.list)"), json!(2));
    assert_eq!(eval("trim('  a ')"), json!("a"));
    assert_eq!(eval("upper('a') + lower('B')"), json!("Ab"));
    assert_eq!(eval("join(config.list, '+')"), json!("a+b c"));
    assert_eq!(eval("split('a,b')"), json!(["a", "b"]));
    assert_eq!(eval("shellquote(config.name)"), json!("World"));
    assert_eq!(
        eval("shellquote(\"it's\", 'a b')"),
        json!(r"'it'\''s' 'a b'")
    );
    assert_eq!(eval("shellquote(config.list)"), json!("a 'b c'"));
    assert_eq!(eval("shellquote('')"), json!("''"));
    assert_eq!(
        eval("shellparse('a \"b c\" d\\\\ e \\'f g\\'')"),
        json!(["a", "b c", "d e", "f g"])
    );
}

#[test]
fn errors_say_where_and_what() {
    assert_eq!(
        error("1 +"),
        "at position 4: expected a value, a name or `(`, found the end of the expression"
    );
    assert_eq!(
        error("(1 + 2"),
        "at position 7: expected `)`, found the end of the expression"
    );
    assert_eq!(
        error("1 2"),
        "at position 3: expected an operator or the end of the expression, found number `2`"
    );
    assert_eq!(
        error("a ? b"),
        "at position 6: expected `:`, found the end of the expression"
    );
    assert_eq!(
        error("'open"),
        "at position 1: unterminated string: expected a closing '"
    );
    assert_eq!(error("1 # 2"), "at position 3: unexpected character `#`");
    assert!(
        error("nope(1)")
            .starts_with("at position 1: unknown function `nope`; known functions: shellquote")
    );
    assert_eq!(
        error("trim(1, 2)"),
        "at position 1: `trim` takes 1 argument(s), found 2"
    );
    assert_eq!(error(""), "empty expression");
    assert_eq!(error("config.missing"), "unknown name `config.missing`");
    assert_eq!(error("1 / 0"), "division by zero");
    assert_eq!(error("'a' * 2"), "`*` expects numbers, found string \"a\"");
    assert_eq!(error("9223372036854775807 + 1"), "integer overflow in `+`");
    assert!(error("shellparse('a; b')").contains("`;` is not supported"));
    assert!(error("shellparse('$HOME')").contains("`$` is not supported"));
}

#[test]
fn truthiness() {
    for falsy in [
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!(null),
        json!("false"),
    ] {
        assert!(!truthy(&falsy), "{falsy}");
    }
    for truthy_value in [
        json!(true),
        json!(1),
        json!(-1),
        json!("0"),
        json!("no"),
        json!([]),
        json!({}),
    ] {
        assert!(truthy(&truthy_value), "{truthy_value}");
    }
}

#[test]
fn identifiers_and_templates() {
    let expr = Expr::parse("config.a + index * config.a + len(matrix.url)").unwrap();
    assert_eq!(expr.identifiers(), ["config.a", "index", "matrix.url"]);
    let found =
        template_expressions("k6 --vus {{ shellquote(config.vus) }} {{ index + 1 }}/{{count}}")
            .unwrap();
    let sources: Vec<&str> = found.iter().map(Expr::source).collect();
    assert_eq!(sources, ["shellquote(config.vus)", "index + 1", "count"]);
    assert!(found[0].is_shellquote_call());
    assert!(!found[1].is_shellquote_call());
    // `}}` inside a string does not close the template.
    assert_eq!(
        template_expressions("{{ '}}' }}").unwrap()[0].source(),
        "'}}'"
    );
    assert!(template_expressions("no templates").unwrap().is_empty());
    let error = template_expressions("echo {{ 1 +  }} and {{").unwrap_err();
    assert!(
        error.message.contains("in `{{ 1 +  }}`: at position 4"),
        "{error}"
    );
    let error = template_expressions("a {{ b").unwrap_err();
    assert_eq!(
        error.message,
        "unterminated `{{` at position 3: no closing `}}`"
    );
}

#[test]
fn plain_rendering() {
    let text = render(
        "{{ index + 1 }}/{{ count }} {{ config.name }} {{ null }}!",
        &scope(),
        Quoting::Plain,
    )
    .unwrap();
    assert_eq!(text, "2/4 World !");
    assert_eq!(
        render("no templates", &scope(), Quoting::Plain).unwrap(),
        "no templates"
    );
    assert_eq!(
        render("{{ nope }}", &scope(), Quoting::Plain)
            .unwrap_err()
            .message,
        "unknown name `nope`"
    );
}

// ---- shell quoting against a real shell -----------------------------------------------------

const HOSTILE: &[&str] = &[
    "a'; rm -rf ~ #",
    "$(touch PWNED)",
    "`touch PWNED`",
    "\"; touch PWNED; echo \"",
    "line one\ntouch PWNED\nline three",
    "back\\slash \\' \\\" $HOME ${HOME} * ?",
    "'",
    "",
    "--flag=x'\"'\"'y",
];

struct One(String);

impl Scope for One {
    fn resolve(&self, name: &str) -> Option<Value> {
        (name == "config.value").then(|| Value::String(self.0.clone()))
    }
}

/// Runs `script` with `/bin/sh -c` in a fresh directory; returns stdout, and fails if the script
/// created anything (which is what every injection attempt above tries).
fn run(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .env("HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "the script created files: {script}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn shell_values_stay_literal_in_every_context() {
    for value in HOSTILE {
        let scope = One((*value).to_owned());
        for template in [
            "printf '%s' {{ config.value }}",
            "printf '%s' '{{ config.value }}'",
            "printf '%s' \"{{ config.value }}\"",
            "printf '%s' pre{{ config.value }}post",
            "printf '%s' 'pre{{ config.value }}post'",
            "printf '%s' \"pre{{ config.value }}post\"",
            "printf '%s' \"$(printf '%s' {{ config.value }})\"",
            "# a comment {{ config.value }}\nprintf '%s' {{ config.value }}",
        ] {
            let script = render(template, &scope, Quoting::Shell).unwrap();
            let expected = if template.contains("pre{{") {
                format!("pre{value}post")
            } else if template.contains("$(") {
                // Command substitution drops trailing newlines, as it always does.
                value.trim_end_matches('\n').to_owned()
            } else {
                (*value).to_owned()
            };
            assert_eq!(
                run(&script),
                expected,
                "template {template:?}, value {value:?}, script {script:?}"
            );
        }
    }
}

#[test]
fn shellquote_is_pasted_as_is_outside_quotes() {
    for value in HOSTILE {
        let scope = One((*value).to_owned());
        let script = render(
            "printf '%s|' {{ shellquote(config.value) }} end",
            &scope,
            Quoting::Shell,
        )
        .unwrap();
        assert_eq!(run(&script), format!("{value}|end|"), "{script:?}");
        // Inside quotes the already-quoted text is escaped again: it shows, but cannot escape.
        let script = render(
            "printf '%s' '{{ shellquote(config.value) }}'",
            &scope,
            Quoting::Shell,
        )
        .unwrap();
        let shown = run(&script);
        assert_eq!(shown, eval_shellquote(value), "{script:?}");
    }
}

fn eval_shellquote(value: &str) -> String {
    Expr::parse("shellquote(config.value)")
        .unwrap()
        .eval(&One(value.to_owned()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn k6_style_arguments() {
    let scope = MapScope::from([
        ("config.vus", json!(10)),
        ("config.duration", json!("30s; touch PWNED")),
        ("index", json!(0)),
        ("count", json!(2)),
    ]);
    let script = render(
        "printf '%s\\n' --vus {{ shellquote(config.vus) }} --duration {{ shellquote(config.duration) }} --execution-segment {{ index }}/{{ count }}:{{ index + 1 }}/{{ count }}",
        &scope,
        Quoting::Shell,
    )
    .unwrap();
    assert_eq!(
        run(&script),
        "--vus\n10\n--duration\n30s; touch PWNED\n--execution-segment\n0/2:1/2\n"
    );
}

#[test]
fn unsafe_places_are_refused() {
    let scope = One("x".to_owned());
    for template in [
        "echo ${{ config.value }}",
        "echo \\{{ config.value }}",
        "echo `echo {{ config.value }}`",
        "echo ${HOME:-{{ config.value }}}",
        "cat <<EOF\n{{ config.value }}\nEOF",
        "cat <<'EOF'\nliteral {{ config.value }}\nEOF",
        "cat <<EOF\n",
    ] {
        if template.ends_with("<<EOF\n") {
            // A here-document delimiter cannot be a template either.
            let error =
                render("cat <<{{ config.value }}\nx\n", &scope, Quoting::Shell).unwrap_err();
            assert!(error.message.contains("cannot insert"), "{error}");
            continue;
        }
        let error = render(template, &scope, Quoting::Shell).unwrap_err();
        assert!(
            error.message.contains("cannot insert `{{ config.value }}`"),
            "{template:?}: {error}"
        );
        assert!(error.message.contains("environment variable"), "{error}");
    }
    // After the here-document ends, templates are fine again; a here-string is not a here-document.
    let script = render(
        "cat <<EOF\nbody\nEOF\nprintf '%s' {{ config.value }}",
        &scope,
        Quoting::Shell,
    )
    .unwrap();
    assert_eq!(run(&script), "body\nx");
    let script = render("cat <<< {{ config.value }}", &scope, Quoting::Shell).unwrap();
    assert_eq!(script, "cat <<< 'x'");
}

#[test]
fn long_chains_within_the_length_limit_evaluate() {
    let sum = vec!["1"; 2048].join("+");
    assert_eq!(eval(&sum), json!(2048));
    let all = vec!["passed"; 512].join("&&");
    assert_eq!(eval(&all), json!(true));
    // `&&` and `||` do not evaluate what they do not need.
    assert_eq!(eval("failed && nope"), json!(false));
    assert_eq!(eval("passed || nope"), json!(true));
}
