//! Capability templates and argument schemas: checked when a capability is
//! defined, used when one is run.
//!
//! A template-mode capability is a list of `command_tokens`, each a MiniJinja
//! template rendered *on its own* against the execution's args: one token is
//! one argv entry whatever it renders to (spaces, quotes, `;` included), and
//! no shell ever sees it. A prompt-mode capability is one `prompt_template`
//! rendered against the task (see [`PromptContext`]).
//!
//! Everything that can be known before a run is checked when the capability
//! is created or updated, so a typo is refused then and not discovered by a
//! failed run later:
//!
//! - `args_schema` compiles as a JSON Schema ([`check_args_schema`]); remote
//!   and file `$ref`s are not resolved (refused at compile time).
//! - every template parses, and every top-level variable it reads is known
//!   ([`check_command_tokens`], [`check_prompt_template`]): a property of the
//!   args schema (template mode), or one of [`PROMPT_VARIABLES`] or a schema
//!   property (prompt mode). A schema whose `additionalProperties` is present
//!   and not `false` admits args of any name, so it admits any variable.
//!   MiniJinja's global functions (`range`, `dict`, `namespace`, `debug`) are
//!   always known.
//!
//! Rendering ([`render_command_tokens`], [`render_prompt`]) runs with
//! [`UndefinedBehavior::Strict`] (an undefined variable fails instead of
//! rendering as nothing; use `{{ x | default("") }}` or `{% if x is defined %}`
//! for optional args), no auto-escaping, trailing newlines kept, and a fuel
//! budget bounding the time and memory one render may take. What static
//! analysis cannot see (an unknown filter, an `{% include %}`, which has
//! nothing to include) fails at render time.

use std::collections::BTreeSet;

use minijinja::{
    AutoEscape, Environment, Error as TemplateError, UndefinedBehavior, syntax::SyntaxConfig,
    value::Serde,
};
use serde_json::{Map, Value};

use super::{StoreError, StoreResult};

/// Top-level variables a prompt template may read besides the args schema's
/// properties: the task's title, description and id, its `input_context`
/// (keys also under their snake_case names, `{{input_context.prompt_additions}}`)
/// and the execution's `args` as one object.
pub const PROMPT_VARIABLES: [&str; 5] = [
    "task_title",
    "task_description",
    "task_id",
    "input_context",
    "args",
];

/// Fuel of one render: about this many instructions, or 64 times as many
/// bytes of data allocated (see `minijinja::Environment::set_fuel`): 16 MB
/// at most per `CreateExecution`, whatever the number of tokens (with 2M fuel
/// per token, 16 tokens of `{{ "x" * 50000000 }}` took the server from 114
/// to 817 MB).
const RENDER_FUEL: u64 = 250_000;

/// Most bytes one render may produce: the argv of a run (all its tokens
/// together) or a prompt. Well under what a worker's assignment can carry.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// Longest template source accepted, in bytes: a prompt of a few pages, a
/// command token of any sensible length.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Most operators one `{{ … }}` or `{% … %}` block may chain. MiniJinja
/// parses and walks expressions recursively: a chain of 10,000 `+`, `not` or
/// unary `-` overflowed a 2 MiB stack and aborted the process (1,000 was
/// fine), and a chain of filters or attributes did the same when the
/// variables were checked. Real templates use a handful.
pub const MAX_EXPRESSION_OPERATORS: usize = 200;

/// The environment every capability template is parsed and rendered in.
fn environment() -> Environment<'static> {
    environment_with_fuel(RENDER_FUEL)
}

/// The environment with `fuel` for each render in it.
fn environment_with_fuel(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("default delimiters are valid"),
    );
    env.set_fuel(Some(fuel.max(1)));
    env
}

/// Refuses a render whose output passed [`MAX_RENDERED_BYTES`].
fn check_rendered_size(part: impl Fn() -> String, bytes: usize) -> Result<(), RenderError> {
    if bytes > MAX_RENDERED_BYTES {
        return Err(RenderError {
            part: part(),
            message: format!("renders to {bytes} bytes; at most {MAX_RENDERED_BYTES} are allowed"),
        });
    }
    Ok(())
}

/// Describes a MiniJinja error without its `(in <string>:1)` suffix, adding
/// the line for multi-line sources.
fn describe(err: &TemplateError, multi_line: bool) -> String {
    let mut message = err.kind().to_string();
    if let Some(detail) = err.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    if multi_line && let Some(line) = err.line() {
        message.push_str(&format!(" (line {line})"));
    }
    message
}

/// Checks that `schema` is a JSON Schema object describing an args object
/// and that it compiles. `field` names it in errors (`capability.args_schema`).
pub fn check_args_schema(field: &str, schema: &Value) -> StoreResult<()> {
    let Some(object) = schema.as_object() else {
        return Err(StoreError::invalid(field, "must be a JSON object"));
    };
    match object.get("type") {
        None => {}
        Some(Value::String(kind)) if kind == "object" => {}
        Some(other) => {
            return Err(StoreError::invalid(
                format!("{field}/type"),
                format!("args are an object, so the schema's type must be \"object\", not {other}"),
            ));
        }
    }
    jsonschema::validator_for(schema).map_err(|err| {
        StoreError::invalid(format!("{field}{}", err.instance_path()), err.to_string())
    })?;
    Ok(())
}

/// Names of the properties the schema declares.
fn schema_properties(schema: &Value) -> BTreeSet<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

/// Whether args may carry properties the schema does not declare: only when
/// `additionalProperties` is present and not `false`. (JSON Schema treats an
/// absent keyword as "allowed"; here it is not, so that a template variable
/// with a typo is refused unless the schema opts in explicitly.)
fn admits_any_property(schema: &Value) -> bool {
    matches!(
        schema.get("additionalProperties"),
        Some(value) if value != &Value::Bool(false)
    )
}

/// Refuses a template too large, or with an expression too deep, to parse
/// and walk safely, before MiniJinja sees it: see [`MAX_TEMPLATE_BYTES`] and
/// [`MAX_EXPRESSION_OPERATORS`]. String literals and comments do not count.
fn check_complexity(source: &str) -> Result<(), String> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "is {} bytes; a template may have at most {MAX_TEMPLATE_BYTES}",
            source.len()
        ));
    }
    let bytes = source.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let close = match (bytes[i], bytes[i + 1]) {
            (b'{', b'{') => b'}',
            (b'{', b'%') => b'%',
            (b'{', b'#') => {
                // A comment: skip to its end.
                i = source[i + 2..]
                    .find("#}")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        i += 2;
        let mut operators = 0;
        let mut word = String::new();
        while i < bytes.len() && !(bytes[i] == close && bytes.get(i + 1) == Some(&b'}')) {
            let b = bytes[i];
            if b == b'"' || b == b'\'' {
                // A string literal, escapes included, counts as one operand.
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            } else if b.is_ascii_alphanumeric() || b == b'_' {
                word.push(b as char);
            } else {
                if matches!(
                    word.as_str(),
                    "not" | "and" | "or" | "is" | "in" | "if" | "else"
                ) {
                    operators += 1;
                }
                word.clear();
                if b"+-*/%~|.[(<>=!,".contains(&b) {
                    operators += 1;
                }
            }
            if operators > MAX_EXPRESSION_OPERATORS {
                return Err(format!(
                    "an expression chains more than {MAX_EXPRESSION_OPERATORS} operators; \
                     split it up (set intermediate values with {{% set %}})"
                ));
            }
            i += 1;
        }
        i += 2;
    }
    Ok(())
}

/// Parses `source` and checks the top-level variables it reads against `known`.
fn check_template(
    env: &Environment<'static>,
    field: &str,
    source: &str,
    known: &BTreeSet<String>,
    any_variable: bool,
) -> StoreResult<()> {
    check_complexity(source).map_err(|message| StoreError::invalid(field, message))?;
    let multi_line = source.contains('\n');
    let template = env
        .template_from_str(source)
        .map_err(|err| StoreError::invalid(field, describe(&err, multi_line)))?;
    if any_variable {
        return Ok(());
    }
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !known.contains(name) && env.globals().all(|(global, _)| global != name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    let listed = unknown
        .iter()
        .map(|name| super::validate::quoted(name))
        .collect::<Vec<_>>()
        .join(", ");
    let known = if known.is_empty() {
        "none".to_owned()
    } else {
        known.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    Err(StoreError::invalid(
        field,
        format!("reads undeclared variable(s) {listed} (known: {known})"),
    ))
}

/// Checks template-mode `command_tokens` against the args schema: each token
/// parses on its own, and reads only the schema's properties (unless the
/// schema admits any property). Errors name the token: `{field}[2]`.
pub fn check_command_tokens(field: &str, tokens: &[String], schema: &Value) -> StoreResult<()> {
    let env = environment();
    let known = schema_properties(schema);
    let any = admits_any_property(schema);
    for (index, token) in tokens.iter().enumerate() {
        check_template(&env, &format!("{field}[{index}]"), token, &known, any)?;
    }
    Ok(())
}

/// Checks a prompt-mode template: it parses, and reads only
/// [`PROMPT_VARIABLES`] and the schema's properties (unless the schema admits
/// any property). `schema_field` names the schema in the error refusing a
/// property that a prompt variable would hide.
pub fn check_prompt_template(
    field: &str,
    template: &str,
    schema_field: &str,
    schema: &Value,
) -> StoreResult<()> {
    let mut known = schema_properties(schema);
    if let Some(reserved) = PROMPT_VARIABLES.iter().find(|name| known.contains(**name)) {
        return Err(StoreError::invalid(
            format!("{schema_field}/properties/{reserved}"),
            format!("{reserved:?} is a prompt variable; rename the property"),
        ));
    }
    known.extend(PROMPT_VARIABLES.iter().map(|name| (*name).to_owned()));
    check_template(
        &environment(),
        field,
        template,
        &known,
        admits_any_property(schema),
    )
}

/// Validates an execution's `args` against a capability's `args_schema`.
/// The error names the failing place as a JSON pointer under `args`
/// (`args/count: 0 is less than the minimum of 1`), with a count of any
/// further failures.
pub fn validate_args(schema: &Value, args: &Value) -> StoreResult<()> {
    let validator = jsonschema::validator_for(schema).map_err(|err| {
        StoreError::invalid(
            "args_schema",
            format!("the capability's schema does not compile: {err}"),
        )
    })?;
    let mut errors = validator.iter_errors(args);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    let more = errors.count();
    let mut message = first.to_string();
    if more > 0 {
        message.push_str(&format!(" (and {more} more)"));
    }
    Err(StoreError::invalid(
        format!("args{}", first.instance_path()),
        message,
    ))
}

/// A template that failed to render at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {message}")]
pub struct RenderError {
    /// What failed: `command_tokens[1]` or `prompt_template`.
    pub part: String,
    /// MiniJinja's description (`undefined value: `path` is undefined`).
    pub message: String,
}

fn render_one(
    env: &Environment<'static>,
    part: impl Fn() -> String,
    source: &str,
    context: &minijinja::Value,
) -> Result<String, RenderError> {
    let multi_line = source.contains('\n');
    let error = |err: TemplateError| RenderError {
        part: part(),
        message: describe(&err, multi_line),
    };
    // Stored templates passed this check when they were defined; rendering
    // checks again, as nothing that reaches the parser may skip it.
    check_complexity(source).map_err(|message| RenderError {
        part: part(),
        message,
    })?;
    env.template_from_str(source)
        .map_err(error)?
        .render(context)
        .map_err(error)
}

/// Renders template-mode `command_tokens` against `args` (a JSON object whose
/// properties are the templates' variables): one argv entry per token, never
/// split or joined, empty results kept.
///
/// The tokens share one fuel budget (each gets its part) and one output cap,
/// so a run's cost does not grow with its number of tokens.
pub fn render_command_tokens(tokens: &[String], args: &Value) -> Result<Vec<String>, RenderError> {
    let env = environment_with_fuel(RENDER_FUEL / tokens.len().max(1) as u64);
    let context = minijinja::Value::from(Serde(args));
    let mut rendered = Vec::with_capacity(tokens.len());
    let mut total = 0;
    for (index, token) in tokens.iter().enumerate() {
        let part = || format!("command_tokens[{index}]");
        let argument = render_one(&env, part, token, &context)?;
        total += argument.len();
        check_rendered_size(part, total)?;
        rendered.push(argument);
    }
    Ok(rendered)
}

/// What a prompt template is rendered with.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptContext {
    /// `{{task_id}}`.
    pub task_id: String,
    /// `{{task_title}}`.
    pub task_title: String,
    /// `{{task_description}}`: empty when the task has none.
    pub task_description: Option<String>,
    /// `{{input_context}}`: the task's stored input context (camelCase keys,
    /// each also offered under its snake_case name).
    pub input_context: Value,
    /// The execution's args: `{{args.x}}`, and each property also as `{{x}}`.
    pub args: Value,
}

/// `promptAdditions` → `prompt_additions`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The input context with each top-level key also under its snake_case name
/// (the wire spells the fields `prompt_additions`, the stored JSON `promptAdditions`).
fn with_snake_case_keys(input_context: &Value) -> Value {
    let Some(object) = input_context.as_object() else {
        return input_context.clone();
    };
    let mut out = object.clone();
    for (key, value) in object {
        let snake = snake_case(key);
        if snake != *key {
            out.entry(snake).or_insert_with(|| value.clone());
        }
    }
    Value::Object(out)
}

/// Renders a prompt-mode template. Its variables are the args' properties,
/// overridden by [`PROMPT_VARIABLES`].
pub fn render_prompt(template: &str, context: &PromptContext) -> Result<String, RenderError> {
    let mut variables = context.args.as_object().cloned().unwrap_or_else(Map::new);
    variables.insert("task_id".into(), Value::String(context.task_id.clone()));
    variables.insert(
        "task_title".into(),
        Value::String(context.task_title.clone()),
    );
    variables.insert(
        "task_description".into(),
        Value::String(context.task_description.clone().unwrap_or_default()),
    );
    variables.insert(
        "input_context".into(),
        with_snake_case_keys(&context.input_context),
    );
    variables.insert("args".into(), context.args.clone());
    let env = environment();
    let part = || "prompt_template".to_owned();
    let prompt = render_one(
        &env,
        part,
        template,
        &minijinja::Value::from(Serde(Value::Object(variables))),
    )?;
    check_rendered_size(part, prompt.len())?;
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tokens(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    fn invalid(err: StoreError) -> (String, String) {
        match err {
            StoreError::InvalidArgument { field, message } => (field, message),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn schemas_must_compile_and_describe_an_object() {
        let field = "capability.args_schema";
        check_args_schema(field, &json!({})).unwrap();
        check_args_schema(
            field,
            &json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        )
        .unwrap();
        let (f, m) = invalid(
            check_args_schema(field, &json!({"properties": {"n": {"type": "intger"}}}))
                .unwrap_err(),
        );
        assert_eq!(f, "capability.args_schema/properties/n/type");
        assert!(m.contains("intger"), "{m}");
        let (f, _) = invalid(check_args_schema(field, &json!({"type": "string"})).unwrap_err());
        assert_eq!(f, "capability.args_schema/type");
        let (_, m) = invalid(
            check_args_schema(
                field,
                &json!({"properties": {"p": {"pattern": "(unclosed"}}}),
            )
            .unwrap_err(),
        );
        assert!(m.contains("regex"), "{m}");
        // No network or file access while compiling a schema.
        for reference in ["https://example.invalid/s.json", "file:///etc/passwd"] {
            let err = check_args_schema(field, &json!({"$ref": reference})).unwrap_err();
            assert!(invalid(err).1.contains(reference));
        }
        assert!(check_args_schema(field, &json!([1])).is_err());
    }

    #[test]
    fn command_tokens_must_parse_and_read_declared_properties() {
        let field = "capability.command_tokens";
        let schema =
            json!({"type": "object", "properties": {"pattern": {"type": "string"}, "n": {}}});
        check_command_tokens(
            field,
            &tokens(&[
                "-n",
                "{{ pattern }}",
                "--max={{ n | default(3) }}",
                "{% for i in range(2) %}{{ i }}{% endfor %}",
            ]),
            &schema,
        )
        .unwrap();

        let (f, m) = invalid(
            check_command_tokens(field, &tokens(&["-e", "{{patern}}"]), &schema).unwrap_err(),
        );
        assert_eq!(f, "capability.command_tokens[1]");
        assert!(
            m.contains("\"patern\"") && m.contains("known: n, pattern"),
            "{m}"
        );

        let (f, m) = invalid(
            check_command_tokens(field, &tokens(&["a", "b", "{{ pattern"]), &schema).unwrap_err(),
        );
        assert_eq!(f, "capability.command_tokens[2]");
        assert!(
            m.starts_with("syntax error: unexpected end of input"),
            "{m}"
        );
        assert!(!m.contains("<string>"), "{m}");

        // No properties declared: no variables at all.
        let (_, m) =
            invalid(check_command_tokens(field, &tokens(&["{{x}}"]), &json!({})).unwrap_err());
        assert!(m.contains("known: none"), "{m}");
        // Explicitly open schemas admit any variable; `false` does not.
        check_command_tokens(
            field,
            &tokens(&["{{x}}"]),
            &json!({"additionalProperties": true}),
        )
        .unwrap();
        check_command_tokens(
            field,
            &tokens(&["{{x}}"]),
            &json!({"additionalProperties": {"type": "string"}}),
        )
        .unwrap();
        assert!(
            check_command_tokens(
                field,
                &tokens(&["{{x}}"]),
                &json!({"additionalProperties": false})
            )
            .is_err()
        );
    }

    #[test]
    fn prompt_templates_read_task_variables_and_properties() {
        let field = "capability.prompt_template";
        let schema_field = "capability.args_schema";
        let schema = json!({"properties": {"focus": {"type": "string"}}});
        check_prompt_template(
            field,
            "Task {{task_id}}: {{ task_title }}\n{{ task_description }}\n{{ input_context.prompt_additions | default('') }}\n{{ args.focus }} {{ focus }}",
            schema_field,
            &schema,
        )
        .unwrap();
        let (f, m) = invalid(
            check_prompt_template(field, "{{ task_tilte }}", schema_field, &schema).unwrap_err(),
        );
        assert_eq!(f, field);
        assert!(m.contains("\"task_tilte\""), "{m}");
        let (f, m) = invalid(
            check_prompt_template(field, "line one\n{% if %}", schema_field, &schema).unwrap_err(),
        );
        assert_eq!(f, field);
        assert!(
            m.starts_with("syntax error") && m.ends_with("(line 2)"),
            "{m}"
        );
        let (f, _) = invalid(
            check_prompt_template(
                field,
                "{{ task_id }}",
                schema_field,
                &json!({"properties": {"task_id": {}}}),
            )
            .unwrap_err(),
        );
        assert_eq!(f, "capability.args_schema/properties/task_id");
    }

    #[test]
    fn args_are_validated_with_their_json_path() {
        let schema = json!({
            "type": "object",
            "properties": {"count": {"type": "integer", "minimum": 1}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["count"],
            "additionalProperties": false
        });
        validate_args(&schema, &json!({"count": 2, "tags": ["a"]})).unwrap();
        let (f, m) = invalid(validate_args(&schema, &json!({"count": 0})).unwrap_err());
        assert_eq!(f, "args/count");
        assert_eq!(m, "0 is less than the minimum of 1");
        let (f, _) =
            invalid(validate_args(&schema, &json!({"count": 1, "tags": ["a", 3]})).unwrap_err());
        assert_eq!(f, "args/tags/1");
        let (f, m) = invalid(validate_args(&schema, &json!({"zzz": 1})).unwrap_err());
        assert_eq!(f, "args");
        assert!(m.ends_with("(and 1 more)"), "{m}");
        validate_args(&json!({}), &json!({"anything": [1, 2]})).unwrap();
    }

    #[test]
    fn each_token_renders_to_exactly_one_argument() {
        let rendered = render_command_tokens(
            &tokens(&[
                "grep",
                "-e",
                "{{ pattern }}",
                "{{ path | default('.') }}",
                "",
                "--n={{ n }}",
            ]),
            &json!({"pattern": "a b; rm -rf / $(x) 'q' \"", "n": 3}),
        )
        .unwrap();
        assert_eq!(
            rendered,
            ["grep", "-e", "a b; rm -rf / $(x) 'q' \"", ".", "", "--n=3"]
        );
        // Nothing is escaped, and a trailing newline is kept.
        assert_eq!(
            render_command_tokens(&tokens(&["{{ s }}\n"]), &json!({"s": "<&>"})).unwrap(),
            ["<&>\n"]
        );
        let err = render_command_tokens(&tokens(&["ok", "{{ missing }}"]), &json!({})).unwrap_err();
        assert_eq!(err.part, "command_tokens[1]");
        assert!(err.message.contains("undefined"), "{err}");
        let err = render_command_tokens(&tokens(&["{{ x | nosuchfilter }}"]), &json!({"x": 1}))
            .unwrap_err();
        assert_eq!(err.part, "command_tokens[0]");
    }

    #[test]
    fn rendering_is_bounded() {
        let err = render_command_tokens(
            &tokens(&[
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            ]),
            &json!({}),
        )
        .unwrap_err();
        assert!(err.message.contains("fuel"), "{err}");
        // One budget for the whole argv: sixteen tokens that each allocate
        // 1.5 MB passed one by one (24 MB at one CreateExecution).
        let heavy: Vec<String> = (0..16).map(|_| "{{ 'x' * 1500000 }}".into()).collect();
        let err = render_command_tokens(&heavy, &json!({})).unwrap_err();
        assert!(err.message.contains("fuel"), "{err}");
        // And one cap on what comes out.
        let wide: Vec<String> = (0..4).map(|_| "{{ 'x' * 300000 }}".into()).collect();
        let err = render_command_tokens(&wide, &json!({})).unwrap_err();
        assert!(err.message.contains("at most"), "{err}");
        assert_eq!(err.part, "command_tokens[3]");
        let context = PromptContext {
            task_id: "t".into(),
            task_title: "x".repeat(600_000),
            task_description: None,
            input_context: json!({}),
            args: json!({}),
        };
        let err = render_prompt("{{ task_title }}{{ task_title }}", &context).unwrap_err();
        assert!(err.message.contains("at most"), "{err}");
    }

    #[test]
    fn prompts_render_task_and_input_context() {
        let context = PromptContext {
            task_id: "t-1".into(),
            task_title: "Fix the build".into(),
            task_description: None,
            input_context: json!({"promptAdditions": "Be brief.", "workingDir": "/src"}),
            args: json!({"focus": "tests", "task_title": "shadowed"}),
        };
        let prompt = render_prompt(
            "{{task_id}} {{ task_title }} [{{ task_description }}]\n{{ input_context.prompt_additions }} {{ input_context.promptAdditions }} {{ input_context.working_dir }}\n{{ focus }}/{{ args.focus }}",
            &context,
        )
        .unwrap();
        assert_eq!(
            prompt,
            "t-1 Fix the build []\nBe brief. Be brief. /src\ntests/tests"
        );
        let err = render_prompt("{{ input_context.env_overrides.X }}", &context).unwrap_err();
        assert_eq!(err.part, "prompt_template");
    }

    /// Chains that overflowed the stack and aborted the server (10,000 links
    /// or more), as every entry point that parses a template meets them.
    fn hostile_templates(links: usize) -> Vec<String> {
        vec![
            format!("{{{{ 1{} }}}}", " + 1".repeat(links)),
            format!("{{{{ pattern{} }}}}", "|abs".repeat(links)),
            format!("{{{{ pattern{} }}}}", ".a".repeat(links)),
            format!("{{{{ pattern{} }}}}", "[0]".repeat(links)),
            format!("{{{{ {}1 }}}}", "not ".repeat(links)),
            format!("{{{{ {}1 }}}}", "- ".repeat(links)),
            format!("{{{{ {}1{} }}}}", "(".repeat(links), ")".repeat(links)),
            format!("{{% if {} %}}x{{% endif %}}", "1 and ".repeat(links) + "1"),
        ]
    }

    #[test]
    fn chained_expressions_are_refused_not_a_crash() {
        let strict = json!({"type": "object", "properties": {"pattern": {"type": "string"}}});
        let any = json!({"additionalProperties": true});
        for links in [10_000, 100_000] {
            for source in hostile_templates(links) {
                let shown = &source[..40];
                for schema in [&strict, &any] {
                    let (f, m) = invalid(
                        check_command_tokens("t", std::slice::from_ref(&source), schema)
                            .unwrap_err(),
                    );
                    assert_eq!(f, "t[0]", "{shown}");
                    assert!(
                        m.contains("operators") || m.contains("bytes"),
                        "{shown}: {m}"
                    );
                    assert!(check_prompt_template("p", &source, "s", schema).is_err());
                }
                let rendered =
                    render_command_tokens(std::slice::from_ref(&source), &json!({"pattern": "x"}));
                assert!(rendered.is_err(), "{shown}");
            }
        }
        // Ordinary expressions, and long string literals, stay welcome.
        let fine = [
            format!("{{{{ 1{} }}}}", " + 1".repeat(150)),
            format!("{{{{ \"{}\" }}}}", "a.b(c)|".repeat(500)),
            "{# a comment with . . . dots #}{{ pattern | upper }}".to_owned(),
        ];
        for source in fine {
            check_command_tokens("t", std::slice::from_ref(&source), &strict).unwrap();
        }
        let (_, m) = invalid(
            check_prompt_template("p", &"x".repeat(MAX_TEMPLATE_BYTES + 1), "s", &any).unwrap_err(),
        );
        assert!(m.contains("at most"), "{m}");
    }

    #[test]
    fn self_referencing_schemas_do_not_recurse_forever() {
        for schema in [
            json!({"$ref": "#"}),
            json!({"allOf": [{"$ref": "#"}]}),
            json!({"anyOf": [{"$ref": "#"}], "properties": {"a": {"$ref": "#"}}}),
            json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}),
        ] {
            let checked = check_args_schema("s", &schema);
            if checked.is_ok() {
                let _ = validate_args(&schema, &json!({"a": {"a": {"a": 1}}}));
            }
        }
    }
}
