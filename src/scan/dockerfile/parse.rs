//! Dockerfile syntax as BuildKit reads it: parser directives, comments, line continuations with
//! the escape character, heredocs, JSON (exec) form, flags and build stages. Also a small shell
//! tokenizer for RUN scripts. Positions are 1-based physical lines.

use std::ops::Range;

/// A syntax error at a line. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub message: String,
}

impl SyntaxError {
    fn new(line: u32, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_uppercase().as_str() {
            "ADD" => Self::Add,
            "ARG" => Self::Arg,
            "CMD" => Self::Cmd,
            "COPY" => Self::Copy,
            "ENTRYPOINT" => Self::Entrypoint,
            "ENV" => Self::Env,
            "EXPOSE" => Self::Expose,
            "FROM" => Self::From,
            "HEALTHCHECK" => Self::Healthcheck,
            "LABEL" => Self::Label,
            "MAINTAINER" => Self::Maintainer,
            "ONBUILD" => Self::Onbuild,
            "RUN" => Self::Run,
            "SHELL" => Self::Shell,
            "STOPSIGNAL" => Self::Stopsignal,
            "USER" => Self::User,
            "VOLUME" => Self::Volume,
            "WORKDIR" => Self::Workdir,
            _ => return None,
        })
    }

    fn takes_flags(self) -> bool {
        matches!(self, Self::From | Self::Run | Self::Copy | Self::Add | Self::Healthcheck)
    }

    fn takes_json(self) -> bool {
        matches!(self, Self::Run | Self::Cmd | Self::Entrypoint | Self::Shell | Self::Copy | Self::Add | Self::Volume)
    }

    fn takes_heredocs(self) -> bool {
        matches!(self, Self::Run | Self::Copy | Self::Add)
    }
}

/// `--name=value` (or a bare `--name`) before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub delimiter: String,
    /// The lines between the marker and the delimiter line, each ending in `\n`.
    pub body: String,
    /// 1-based line of the first body line.
    pub first_line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub keyword: Keyword,
    pub start_line: u32,
    pub end_line: u32,
    /// The lines as written, continuation and heredoc lines included.
    pub text: String,
    /// Continuation lines joined (escape characters and interleaved comments removed), without
    /// heredoc bodies: what BuildKit parses.
    pub logical: String,
    pub flags: Vec<Flag>,
    /// The arguments after the keyword and the flags.
    pub args: String,
    /// The arguments when they are a JSON array of strings (exec form).
    pub exec: Option<Vec<String>>,
    /// The arguments start with `[` but are not a JSON array of strings: Docker then runs them
    /// in shell form.
    pub bad_json: bool,
    pub heredocs: Vec<Heredoc>,
    /// The comment lines directly above (no blank line between), without their `#`.
    pub comments: Vec<String>,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The variables of ENV and ARG, with their values (defaults).
    pub fn variables(&self) -> Vec<(String, Option<String>)> {
        key_values(&self.args, self.keyword == Keyword::Env)
    }

    /// Whitespace-separated arguments (shell form), or the JSON array.
    pub fn words(&self) -> Vec<String> {
        match &self.exec {
            Some(words) => words.clone(),
            None => self.args.split_whitespace().map(str::to_string).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lowercased (BuildKit compares stage names case-insensitively).
    pub name: Option<String>,
    /// The image (or earlier stage) as written.
    pub image: String,
    /// Index of the FROM instruction.
    pub from: usize,
    /// Indexes of the instructions of the stage, FROM included.
    pub instructions: Range<usize>,
}

impl Dockerfile {
    /// Parses a Dockerfile. Errors are what BuildKit would also refuse.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        let (escape, syntax) = directives(&lines)?;
        let mut instructions = Vec::new();
        let mut comments = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let trimmed = lines[i].trim();
            if trimmed.is_empty() {
                comments.clear();
                i += 1;
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                comments.push(comment.trim().to_string());
                i += 1;
                continue;
            }
            let instruction = instruction(&lines, &mut i, escape, std::mem::take(&mut comments))?;
            instructions.push(instruction);
        }
        let dockerfile = Self { escape, syntax, instructions };
        dockerfile.validate()?;
        Ok(dockerfile)
    }

    fn validate(&self) -> Result<(), SyntaxError> {
        let Some(first) = self.instructions.iter().find(|i| i.keyword != Keyword::Arg) else {
            let line = self.instructions.last().map_or(1, |i| i.end_line);
            return Err(SyntaxError::new(line, "no FROM instruction: a Dockerfile needs at least one build stage"));
        };
        if first.keyword != Keyword::From {
            return Err(SyntaxError::new(
                first.start_line,
                format!("'{}' before the first FROM: only ARG may come before FROM", first_word(&first.logical)),
            ));
        }
        for from in self.instructions.iter().filter(|i| i.keyword == Keyword::From) {
            let words = from.words();
            let valid = words.len() == 1 || (words.len() == 3 && words[1].eq_ignore_ascii_case("as"));
            if !valid {
                return Err(SyntaxError::new(
                    from.start_line,
                    format!("FROM takes an image and an optional 'AS name', not '{}'", from.args),
                ));
            }
            if let Some(name) = words.get(2)
                && !valid_stage_name(name)
            {
                return Err(SyntaxError::new(
                    from.start_line,
                    format!(
                        "invalid stage name '{name}': it must start with a letter, then letters, digits, '-', '_' or '.'"
                    ),
                ));
            }
        }
        for instruction in &self.instructions {
            buildkit_accepts(instruction).map_err(|message| {
                SyntaxError::new(
                    instruction.start_line,
                    format!("{}: {message}", first_word(&instruction.logical).to_ascii_uppercase()),
                )
            })?;
        }
        Ok(())
    }

    pub fn stages(&self) -> Vec<Stage> {
        let froms: Vec<usize> =
            self.instructions.iter().enumerate().filter(|(_, i)| i.keyword == Keyword::From).map(|(n, _)| n).collect();
        froms
            .iter()
            .enumerate()
            .map(|(index, &from)| {
                let words = self.instructions[from].words();
                let end = froms.get(index + 1).copied().unwrap_or(self.instructions.len());
                Stage {
                    index,
                    name: words.get(2).map(|n| n.to_ascii_lowercase()),
                    image: words.first().cloned().unwrap_or_default(),
                    from,
                    instructions: from..end,
                }
            })
            .collect()
    }

    /// `ARG`s before the first FROM, with their defaults: the only variables FROM may use.
    pub fn global_args(&self) -> Vec<(String, Option<String>)> {
        self.instructions.iter().take_while(|i| i.keyword == Keyword::Arg).flat_map(Instruction::variables).collect()
    }
}

/// The error for a word that is no instruction. A misspelt instruction is shown (`RUNN`);
/// anything else is not, since a file that is no Dockerfile (a link to a `.env`, a key) would
/// otherwise have its first secret printed: its length and position are enough to find it.
fn unknown_instruction(word: &str) -> String {
    if word.len() <= 12 && word.chars().all(|c| c.is_ascii_alphabetic()) {
        format!("unknown instruction '{word}'")
    } else {
        format!(
            "unknown instruction: the line starts with a {}-character word that is no instruction (not shown: it may be a secret; is this a Dockerfile?)",
            word.chars().count()
        )
    }
}

/// BuildKit's stage names: `[a-z][a-z0-9-_.]*`, any case.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What BuildKit refuses of an instruction's flags and arguments (it fails the build on them;
/// accepting them would check a file that cannot be built).
fn buildkit_accepts(instruction: &Instruction) -> Result<(), String> {
    let flags: &[&str] = match instruction.keyword {
        Keyword::From => &["platform"],
        Keyword::Copy => &["from", "chown", "chmod", "link", "parents", "exclude"],
        Keyword::Add => &["chown", "chmod", "link", "keep-git-dir", "checksum", "exclude", "unpack"],
        Keyword::Run => &["mount", "network", "security", "device"],
        Keyword::Healthcheck => &["interval", "timeout", "start-period", "start-interval", "retries"],
        _ => &[],
    };
    if let Some(flag) = instruction.flags.iter().find(|f| !flags.iter().any(|k| f.name.eq_ignore_ascii_case(k))) {
        return Err(format!("unknown flag --{}", flag.name));
    }
    let words = instruction.words();
    let args = instruction.args.trim();
    match instruction.keyword {
        Keyword::Copy | Keyword::Add if words.len() < 2 => {
            Err("needs a source and a destination (COPY SRC... DEST)".into())
        }
        Keyword::Env | Keyword::Label if args.is_empty() => Err("needs at least one key=value".into()),
        Keyword::Env | Keyword::Label => match instruction.variables().iter().find(|(_, value)| value.is_none()) {
            Some((key, _)) => Err(format!("'{key}' has no value (write {key}=VALUE)")),
            None => Ok(()),
        },
        Keyword::Workdir
        | Keyword::Expose
        | Keyword::Volume
        | Keyword::Stopsignal
        | Keyword::Maintainer
        | Keyword::Arg
        | Keyword::User
            if args.is_empty() =>
        {
            Err("needs an argument".into())
        }
        Keyword::Stopsignal | Keyword::User if words.len() > 1 => Err("takes exactly one argument".into()),
        Keyword::Healthcheck => {
            let first = words.first().map(|w| w.to_ascii_uppercase());
            match first.as_deref() {
                Some("NONE") if words.len() == 1 => Ok(()),
                Some("CMD") if words.len() > 1 => Ok(()),
                Some("CMD") => Err("CMD needs a command".into()),
                _ => Err("takes CMD COMMAND or NONE".into()),
            }
        }
        _ => Ok(()),
    }
}

fn first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

/// `# escape=` and `# syntax=` at the very top; the first other line ends them.
fn directives(lines: &[&str]) -> Result<(char, Option<String>), SyntaxError> {
    let (mut escape, mut syntax, mut seen) = ('\\', None, Vec::new());
    for (n, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix('#') else { break };
        let Some((name, value)) = rest.split_once('=') else { break };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            break;
        }
        let line_no = n as u32 + 1;
        if seen.contains(&name) {
            return Err(SyntaxError::new(line_no, format!("the '{name}' parser directive is given twice")));
        }
        let value = value.trim();
        match name.as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(SyntaxError::new(
                            line_no,
                            format!("invalid escape character '{other}': it must be '\\' or '`'"),
                        ));
                    }
                }
            }
            "syntax" => syntax = Some(value.to_string()),
            "check" => {}
            _ => break,
        }
        seen.push(name);
    }
    Ok((escape, syntax))
}

/// Reads the instruction starting at `lines[*i]` and moves `*i` past it.
fn instruction(lines: &[&str], i: &mut usize, escape: char, comments: Vec<String>) -> Result<Instruction, SyntaxError> {
    let start = *i;
    let mut logical = String::new();
    let mut end;
    loop {
        let line = if *i == start { lines[*i].trim_start() } else { lines[*i] };
        end = *i;
        *i += 1;
        let body = line.trim_end();
        match body.strip_suffix(escape) {
            Some(content) => logical.push_str(content),
            None => {
                logical.push_str(line);
                break;
            }
        }
        // Inside a continuation BuildKit drops comment lines and empty lines.
        while *i < lines.len() && (lines[*i].trim().is_empty() || lines[*i].trim_start().starts_with('#')) {
            *i += 1;
        }
        if *i >= lines.len() {
            break;
        }
    }
    let start_line = start as u32 + 1;
    let word = first_word(&logical).to_string();
    let keyword = Keyword::parse(&word).ok_or_else(|| SyntaxError::new(start_line, unknown_instruction(&word)))?;
    let rest = logical.trim_start()[word.len()..].trim().to_string();
    let (flags, args) = if keyword.takes_flags() { split_flags(&rest) } else { (Vec::new(), rest) };
    let (mut exec, mut bad_json) = (None, false);
    if keyword.takes_json() && args.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(&args) {
            Ok(words) => exec = Some(words),
            // `[ -e /etc/x ] && …` is the shell's test command, not a broken exec form: a JSON
            // array (or a mistyped one, `['a']`) starts with a quote or closes at once.
            Err(_) => {
                let after = args[1..].trim_start();
                bad_json = after.starts_with('"') || after.starts_with('\'') || after.starts_with(']');
            }
        }
    }
    if keyword == Keyword::Shell && exec.is_none() {
        return Err(SyntaxError::new(start_line, "SHELL needs a JSON array, like SHELL [\"/bin/bash\", \"-c\"]"));
    }
    let mut heredocs = Vec::new();
    if keyword.takes_heredocs() && exec.is_none() {
        for (delimiter, strip_tabs) in heredoc_markers(&args) {
            let first = *i;
            let terminator = (first..lines.len()).find(|&n| {
                let line = if strip_tabs { lines[n].trim_start_matches('\t') } else { lines[n] };
                line == delimiter
            });
            let Some(terminator) = terminator else {
                return Err(SyntaxError::new(
                    start_line,
                    format!("unterminated heredoc '<<{delimiter}': no line '{delimiter}' before the end of the file"),
                ));
            };
            let mut body = String::new();
            for line in &lines[first..terminator] {
                body.push_str(if strip_tabs { line.trim_start_matches('\t') } else { line });
                body.push('\n');
            }
            heredocs.push(Heredoc { delimiter, body, first_line: first as u32 + 1 });
            end = terminator;
            *i = terminator + 1;
        }
    }
    Ok(Instruction {
        keyword,
        start_line,
        end_line: end as u32 + 1,
        text: lines[start..=end].join("\n"),
        logical: logical.trim().to_string(),
        flags,
        args,
        exec,
        bad_json,
        heredocs,
        comments,
    })
}

fn split_flags(rest: &str) -> (Vec<Flag>, String) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = match flag[..end].split_once('=') {
            Some((name, value)) => (name, Some(unquote(value))),
            None => (&flag[..end], None),
        };
        flags.push(Flag { name: name.to_ascii_lowercase(), value });
        rest = flag[end..].trim_start();
    }
    (flags, rest.to_string())
}

/// Strips one level of matching quotes.
pub fn unquote(text: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner.to_string();
        }
    }
    text.to_string()
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"` outside quotes, in order: the delimiter and whether tabs are
/// stripped. `<<<` (a here-string) is not a heredoc.
fn heredoc_markers(args: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = args.chars().collect();
    let mut markers = Vec::new();
    let mut quote = None;
    let mut n = 0;
    while n < chars.len() {
        let c = chars[n];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '<' && chars.get(n + 1) == Some(&'<') && chars.get(n + 2) != Some(&'<') => {
                if n > 0 && chars[n - 1] == '<' {
                    n += 2;
                    continue;
                }
                let mut k = n + 2;
                let strip_tabs = chars.get(k) == Some(&'-');
                if strip_tabs {
                    k += 1;
                }
                let (word, next) = heredoc_word(&chars, k);
                if !word.is_empty() {
                    markers.push((word, strip_tabs));
                }
                n = next;
                continue;
            }
            None => {}
        }
        n += 1;
    }
    markers
}

/// The delimiter word at `chars[k..]` (quotes removed) and the index after it.
fn heredoc_word(chars: &[char], mut k: usize) -> (String, usize) {
    let mut word = String::new();
    while k < chars.len() {
        let c = chars[k];
        if c == '"' || c == '\'' {
            let close = chars[k + 1..].iter().position(|&d| d == c).map_or(chars.len(), |p| k + 1 + p);
            word.extend(&chars[k + 1..close.min(chars.len())]);
            k = close + 1;
        } else if c.is_whitespace() || ";|&<>()".contains(c) {
            break;
        } else {
            word.push(c);
            k += 1;
        }
    }
    (word, k)
}

/// `KEY=value` pairs (quotes removed) of ENV, ARG and LABEL; with `legacy_form`, also
/// `ENV KEY value` (ARG has no such form: `ARG A B` declares two variables).
pub fn key_values(args: &str, legacy_form: bool) -> Vec<(String, Option<String>)> {
    let words = split_words(args);
    let legacy = legacy_form && words.first().is_some_and(|w| !w.contains('=')) && words.len() > 1;
    if legacy {
        let value = args.trim().split_once(char::is_whitespace).map_or("", |(_, v)| v.trim());
        return vec![(words[0].clone(), Some(unquote(value)))];
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

/// Splits on unquoted whitespace and removes the quotes.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quote, mut in_word) = (None, false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => word.extend(chars.next()),
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == '\\' => {
                word.extend(chars.next());
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// One simple command of a shell script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShellCommand {
    /// The words with quotes removed; a quoted string is one word.
    pub words: Vec<String>,
    /// The previous command's output is piped into this one (`a | b`).
    pub piped: bool,
}

/// Splits a POSIX shell script into simple commands on `&&`, `||`, `;`, `|`, `&`, parentheses
/// and newlines. Quotes, `$(…)`, backticks and process substitutions stay inside one word;
/// comments and heredoc bodies are skipped.
pub fn shell_commands(script: &str) -> Vec<ShellCommand> {
    let chars: Vec<char> = script.chars().collect();
    let mut lexer = Lexer::default();
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    let mut n = 0;
    while n < chars.len() {
        let c = chars[n];
        let next = chars.get(n + 1).copied();
        match c {
            ' ' | '\t' | '\r' => lexer.end_word(),
            '\\' => {
                if next != Some('\n') {
                    lexer.push_opt(next);
                }
                n += 1;
            }
            '\'' => {
                let close = find(&chars, n + 1, '\'');
                lexer.push_str(&chars[n + 1..close]);
                n = close;
            }
            '"' => {
                let mut k = n + 1;
                while k < chars.len() && chars[k] != '"' {
                    if chars[k] == '\\' && k + 1 < chars.len() {
                        k += 1;
                    }
                    lexer.push(chars[k]);
                    k += 1;
                }
                lexer.in_word = true;
                n = k;
            }
            '`' => {
                let close = find(&chars, n + 1, '`');
                lexer.push_str(&chars[n..(close + 1).min(chars.len())]);
                n = close;
            }
            '$' | '<' | '>' if next == Some('(') => {
                let close = matching_paren(&chars, n + 1);
                lexer.push_str(&chars[n..(close + 1).min(chars.len())]);
                n = close;
            }
            '#' if !lexer.in_word => {
                while n + 1 < chars.len() && chars[n + 1] != '\n' {
                    n += 1;
                }
            }
            '<' if next == Some('<') && chars.get(n + 2) != Some(&'<') && (n == 0 || chars[n - 1] != '<') => {
                lexer.end_word();
                let mut k = n + 2;
                let strip_tabs = chars.get(k) == Some(&'-');
                if strip_tabs {
                    k += 1;
                }
                while chars.get(k).is_some_and(|c| *c == ' ' || *c == '\t') {
                    k += 1;
                }
                let (word, next) = heredoc_word(&chars, k);
                if !word.is_empty() {
                    heredocs.push((word, strip_tabs));
                }
                n = next;
                continue;
            }
            '\n' => {
                lexer.end_command(false);
                for (delimiter, strip_tabs) in heredocs.drain(..) {
                    // Skip the body: up to and including the delimiter line.
                    loop {
                        let end = find(&chars, n + 1, '\n');
                        let line: String = chars[(n + 1).min(chars.len())..end].iter().collect();
                        n = end;
                        let line = if strip_tabs { line.trim_start_matches('\t') } else { &line };
                        if line == delimiter || n >= chars.len() {
                            break;
                        }
                    }
                }
            }
            ';' | '(' | ')' => lexer.end_command(false),
            '&' if next == Some('&') => {
                lexer.end_command(false);
                n += 1;
            }
            '|' if next == Some('|') => {
                lexer.end_command(false);
                n += 1;
            }
            '|' => {
                lexer.end_command(true);
                if next == Some('&') {
                    n += 1;
                }
            }
            '&' if next == Some('>') || lexer.word.ends_with(['<', '>']) => lexer.push(c),
            '&' => lexer.end_command(false),
            _ => lexer.push(c),
        }
        n += 1;
    }
    lexer.end_command(false);
    lexer.commands
}

#[derive(Default)]
struct Lexer {
    commands: Vec<ShellCommand>,
    current: ShellCommand,
    word: String,
    in_word: bool,
    next_piped: bool,
}

impl Lexer {
    fn push(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn push_opt(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.push(c);
        }
    }

    fn push_str(&mut self, chars: &[char]) {
        self.word.extend(chars);
        self.in_word = true;
    }

    fn end_word(&mut self) {
        if self.in_word {
            self.current.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    /// Ends the current command; `pipe` says whether it is piped into the next one.
    fn end_command(&mut self, pipe: bool) {
        self.end_word();
        if !self.current.words.is_empty() {
            self.current.piped = std::mem::take(&mut self.next_piped);
            self.commands.push(std::mem::take(&mut self.current));
        }
        self.next_piped = pipe;
    }
}

/// Index of the next `c` at or after `from`, or `chars.len()`.
fn find(chars: &[char], from: usize, c: char) -> usize {
    chars.get(from..).and_then(|rest| rest.iter().position(|&d| d == c)).map_or(chars.len(), |p| from + p)
}

/// Index of the `)` closing the `(` at `open`, skipping quoted text, or `chars.len()`.
fn matching_paren(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    let mut k = open;
    while k < chars.len() {
        match chars[k] {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            q @ ('\'' | '"') => k = find(chars, k + 1, q),
            '\\' => k += 1,
            _ => {}
        }
        k += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Dockerfile {
        Dockerfile::parse(text).unwrap()
    }

    fn error(text: &str) -> SyntaxError {
        Dockerfile::parse(text).unwrap_err()
    }

    #[test]
    fn continuations_comments_and_lines() {
        let df = parse(
            "# syntax=docker/dockerfile:1\n\nfrom debian:12\n# a comment\nRUN apt-get update \\\n# inside\n\n    && echo hi\nuser app\n",
        );
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        let run = &df.instructions[1];
        assert_eq!((run.keyword, run.start_line, run.end_line), (Keyword::Run, 5, 8));
        assert_eq!(run.args, "apt-get update     && echo hi");
        assert_eq!(run.comments, vec!["a comment"]);
        assert!(run.text.starts_with("RUN apt-get update \\\n# inside"));
        assert_eq!(df.instructions[2].keyword, Keyword::User);
        assert_eq!(df.instructions[2].start_line, 9);
    }

    #[test]
    fn escape_directive_backtick() {
        let df = parse("# escape=`\nFROM mcr.microsoft.com/windows:ltsc2022\nRUN dir C:\\ `\n  && echo done\n");
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].args, "dir C:\\   && echo done");
        assert_eq!(df.instructions[1].end_line, 4);
        // With the default escape a trailing backslash continues the line.
        let df = parse("FROM a:1\nRUN dir C:\\\nUSER x\n");
        assert_eq!(df.instructions.len(), 2);
        assert_eq!(error("# escape=x\nFROM a\n").line, 1);
        assert!(error("# escape=\\\n# escape=`\nFROM a\n").message.contains("twice"));
    }

    #[test]
    fn directives_stop_at_the_first_other_line() {
        let df = parse("# hello\n# escape=`\nFROM a:1\nRUN echo \\\n\n");
        assert_eq!(df.escape, '\\');
    }

    #[test]
    fn exec_shell_and_bad_json() {
        let df = parse(
            "FROM a:1\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\nENTRYPOINT [\"a\", b]\nCMD echo hi\nLABEL x=[1]\n",
        );
        assert_eq!(
            df.instructions[1].exec.as_deref(),
            Some(&["nginx".to_string(), "-g".into(), "daemon off;".into()][..])
        );
        assert!(df.instructions[2].exec.is_none() && df.instructions[2].bad_json);
        assert!(df.instructions[3].exec.is_none() && !df.instructions[3].bad_json);
        assert!(!df.instructions[4].bad_json);
        assert!(error("FROM a:1\nSHELL /bin/bash -c\n").message.contains("JSON"));
    }

    #[test]
    fn heredocs() {
        let text = "FROM a:1\nRUN <<EOF\napt-get update\necho 'EOF'\nEOF\nCOPY <<-\"A\" /a <<B /b\n\tone\n\tA\ntwo\nB\nUSER app\n";
        let df = parse(text);
        let run = &df.instructions[1];
        assert_eq!((run.start_line, run.end_line), (2, 5));
        assert_eq!(run.heredocs[0].body, "apt-get update\necho 'EOF'\n");
        assert_eq!(run.heredocs[0].first_line, 3);
        let copy = &df.instructions[2];
        assert_eq!((copy.start_line, copy.end_line), (6, 10));
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!((copy.heredocs[0].body.as_str(), copy.heredocs[1].body.as_str()), ("one\n", "two\n"));
        assert_eq!(df.instructions[3].start_line, 11);
        // Quoted markers and here-strings are not heredocs.
        let df = parse("FROM a:1\nRUN echo \"<<EOF\" && cat <<<word\nUSER x\n");
        assert!(df.instructions[1].heredocs.is_empty());
        let err = error("FROM a:1\nRUN <<EOF\necho hi\n");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unterminated heredoc '<<EOF'"), "{}", err.message);
    }

    #[test]
    fn stages_flags_and_args() {
        let text = "ARG GO=1.23\nARG BASE\nFROM --platform=$BUILDPLATFORM golang:${GO} AS Build\nCOPY --chown=app:app --from=build /a /b\nRUN --mount=type=cache,target=/root/.cache go build\nFROM scratch\n";
        let df = parse(text);
        assert_eq!(df.global_args(), vec![("GO".to_string(), Some("1.23".to_string())), ("BASE".to_string(), None)]);
        let stages = df.stages();
        assert_eq!(stages.len(), 2);
        assert_eq!((stages[0].name.as_deref(), stages[0].image.as_str()), (Some("build"), "golang:${GO}"));
        assert_eq!(stages[0].instructions, 2..5);
        assert_eq!(df.instructions[2].flag("platform").and_then(|f| f.value.as_deref()), Some("$BUILDPLATFORM"));
        let copy = &df.instructions[3];
        assert_eq!(copy.flags.len(), 2);
        assert_eq!(copy.flag("from").and_then(|f| f.value.as_deref()), Some("build"));
        assert_eq!(copy.args, "/a /b");
        assert_eq!(
            df.instructions[4].flag("mount").and_then(|f| f.value.as_deref()),
            Some("type=cache,target=/root/.cache")
        );
        assert_eq!(stages[1].name, None);
    }

    #[test]
    fn malformed_files() {
        assert!(error("").message.contains("no FROM"));
        assert!(error("\n# only a comment\n").message.contains("no FROM"));
        assert!(error("ARG A=1\n").message.contains("no FROM"));
        let err = error("FROM a:1\nRUNN echo\n");
        assert_eq!((err.line, err.message.as_str()), (2, "unknown instruction 'RUNN'"));
        let refused = [
            ("FROM a\nCOPY onlyone\n", 2, "COPY: needs a source and a destination"),
            ("FROM a\nADD x\n", 2, "ADD: needs a source and a destination"),
            ("FROM a\nENV FOO\n", 2, "ENV: 'FOO' has no value"),
            ("FROM a\nENV\n", 2, "ENV: needs at least one key=value"),
            ("FROM a\nLABEL a=1 b\n", 2, "LABEL: 'b' has no value"),
            ("FROM a\nWORKDIR\n", 2, "WORKDIR: needs an argument"),
            ("FROM a\nEXPOSE\n", 2, "EXPOSE: needs an argument"),
            ("FROM a\nVOLUME\n", 2, "VOLUME: needs an argument"),
            ("FROM a\nSTOPSIGNAL\n", 2, "STOPSIGNAL: needs an argument"),
            ("FROM a\nMAINTAINER\n", 2, "MAINTAINER: needs an argument"),
            ("ARG\nFROM a\n", 1, "ARG: needs an argument"),
            ("FROM a\nHEALTHCHECK CMD\n", 2, "HEALTHCHECK: CMD needs a command"),
            ("FROM a\nHEALTHCHECK\n", 2, "HEALTHCHECK: takes CMD COMMAND or NONE"),
            ("FROM a AS 1abc\n", 1, "invalid stage name '1abc'"),
            ("FROM a\nCOPY --bogus a b\n", 2, "COPY: unknown flag --bogus"),
            ("FROM a\nRUN --from=x true\n", 2, "RUN: unknown flag --from"),
        ];
        for (text, line, expected) in refused {
            let err = Dockerfile::parse(text).unwrap_err();
            assert!(err.line == line && err.message.contains(expected), "{text:?}: {} {}", err.line, err.message);
        }
        let accepted = "FROM a AS build-1.x\nCOPY --from=build-1.x --chown=1:1 --link a b\nADD --checksum=sha256:00 https://x/y /y\nRUN --mount=type=cache,target=/c --network=none true\nENV A=1 B=\"two words\"\nENV LEGACY value with spaces\nLABEL a=1\nHEALTHCHECK --interval=5s CMD curl -f http://localhost/\nHEALTHCHECK NONE\nWORKDIR /app\nCOPY <<EOF /app/x\nhello\nEOF\n";
        Dockerfile::parse(accepted).expect("BuildKit accepts all of it");
        let secret = Dockerfile::parse("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n").unwrap_err();
        assert!(!secret.message.contains("wJalr") && !secret.message.contains("AWS_"), "{}", secret.message);
        assert!(secret.message.contains("62-character word"), "{}", secret.message);
        let err = error("ARG A=1\nRUN echo\nFROM a\n");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("before the first FROM"));
        assert_eq!(error("FROM a b c d\n").line, 1);
        assert_eq!(error("FROM\n").line, 1);
    }

    #[test]
    fn crlf_bom_and_unicode() {
        let df = parse("\u{feff}FROM a:1\r\nENV \"ké\" vé lo\r\nRUN echo \\\r\n  ünï\r\n");
        assert_eq!(df.instructions[1].keyword, Keyword::Env);
        assert_eq!(df.instructions[1].variables(), vec![("ké".to_string(), Some("vé lo".to_string()))]);
        assert_eq!(df.instructions[2].args, "echo   ünï");
    }

    #[test]
    fn key_value_forms() {
        assert_eq!(
            key_values("A=1 B=\"two words\" C", true),
            vec![("A".into(), Some("1".into())), ("B".into(), Some("two words".into())), ("C".into(), None)]
        );
        assert_eq!(key_values("A one two", true), vec![("A".to_string(), Some("one two".to_string()))]);
        assert_eq!(key_values("A B=2", false), vec![("A".to_string(), None), ("B".to_string(), Some("2".to_string()))]);
    }

    fn words(script: &str) -> Vec<Vec<String>> {
        shell_commands(script).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn shell_splitting_respects_quotes_and_comments() {
        assert_eq!(
            words("a 1 && b 'x && y' ; c \"q | r\" || d|e & f\ng # h && i\n(j); k 2>&1 &>/dev/null"),
            vec![
                vec!["a", "1"],
                vec!["b", "x && y"],
                vec!["c", "q | r"],
                vec!["d"],
                vec!["e"],
                vec!["f"],
                vec!["g"],
                vec!["j"],
                vec!["k", "2>&1", "&>/dev/null"],
            ]
        );
        let piped: Vec<bool> = shell_commands("curl x | sh && y").iter().map(|c| c.piped).collect();
        assert_eq!(piped, vec![false, true, false]);
        assert_eq!(words("echo $(cd /x && pwd) `cd y`"), vec![vec!["echo", "$(cd /x && pwd)", "`cd y`"]]);
        assert_eq!(words("echo a\\ b \\\n c"), vec![vec!["echo", "a b", "c"]]);
        assert_eq!(words("echo it#s"), vec![vec!["echo", "it#s"]]);
    }

    #[test]
    fn shell_skips_nested_heredoc_bodies() {
        let script = "cat <<CONF > /etc/x\ncd /nowhere && sudo x\nCONF\nrm -f y\n";
        assert_eq!(words(script), vec![vec!["cat", ">", "/etc/x"], vec!["rm", "-f", "y"]]);
        // Unterminated quotes and parentheses end at the end of the script without panicking.
        assert_eq!(words("echo 'open"), vec![vec!["echo", "open"]]);
        assert_eq!(words("echo $(open \"x"), vec![vec!["echo", "$(open \"x"]]);
        assert_eq!(words("cat <<"), vec![vec!["cat"]]);
    }
}
