//! User-facing diagnostics: a mistake in a Jobfile, a template or an expression, shown with its
//! file, line, column, the offending snippet, what was expected and a suggestion.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A source text a diagnostic points into (the Jobfile, a template).
#[derive(Debug, Clone)]
pub struct Source {
    pub path: String,
    pub text: Arc<str>,
}

/// One mistake in the user's input.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    /// Where it is; `None` when only the file is known.
    pub location: Option<Box<(Source, Range<usize>)>>,
    /// Short text under the caret: what was expected.
    pub label: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), location: None, label: String::new(), help: None }
    }

    /// Points at `span` of `source`, widened to whole characters: a byte range from a parser may
    /// end inside a character (`{{ é }}`), and a diagnostic never cuts one.
    pub fn at(mut self, source: &Source, span: Range<usize>, label: impl Into<String>) -> Self {
        let span = char_span(&source.text, span);
        self.location = Some(Box::new((source.clone(), span)));
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// `span` within `text`, its start moved back and its end moved on to character boundaries.
pub fn char_span(text: &str, span: Range<usize>) -> Range<usize> {
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// The text of `span` within `text`, widened to whole characters (see [`char_span`]).
pub fn snippet(text: &str, span: Range<usize>) -> &str {
    &text[char_span(text, span)]
}

/// All mistakes found in one pass; the error type of every stage that reads user input.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found wrong.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic])
    }
}

impl std::error::Error for Diagnostics {}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let renderer =
            if crate::util::console::color_enabled_stderr() { Renderer::styled() } else { Renderer::plain() };
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f, "\n")?;
            }
            let title = Level::ERROR.primary_title(diagnostic.message.as_str());
            let first = match &diagnostic.location {
                Some(location) => {
                    let (source, span) = &**location;
                    title.element(
                        Snippet::source(&*source.text).path(source.path.as_str()).annotation(
                            AnnotationKind::Primary
                                .span(clamp(span.clone(), &source.text))
                                .label(diagnostic.label.as_str()),
                        ),
                    )
                }
                None => Group::with_title(title),
            };
            let mut report = vec![first];
            if let Some(help) = &diagnostic.help {
                report.push(Group::with_title(Level::HELP.secondary_title(help.as_str())));
            }
            write!(f, "{}", renderer.render(&report))?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\nerror: {} mistakes found", self.0.len())?;
        }
        Ok(())
    }
}

/// A span inside the text and on character boundaries, so a bad span never panics the renderer.
fn clamp(span: Range<usize>, text: &str) -> Range<usize> {
    let mut start = span.start.min(text.len());
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// "did you mean `x`?" for a misspelt name, from the names that would have been accepted.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}
