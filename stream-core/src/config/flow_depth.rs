//! A linear pre-scan of YAML text for the depth of its flow collections (`[...]`, `{...}`).
//!
//! libyaml's scanner walks its stack of possible simple keys, one entry per open flow
//! collection, for every token: 40,000 nested `{a: ` take 37 s in a debug build, a 1 MiB file
//! of them hours, all before the first value reaches [`super::yaml`]'s depth check. So the
//! text is refused here when flow collections nest deeper than [`MAX_FLOW_DEPTH`].
//!
//! The scan follows YAML's lexical rules for quoted scalars, comments, plain scalars (which
//! may contain brackets in block context) and document markers, and errs towards counting
//! more: brackets left open inside quotes and comments count too (`${` excepted), so only a
//! bracket the scan takes for a real closer lowers the count. It does not follow
//! indentation (block scalars and multi-line plain scalars in block context are scanned as
//! if their lines were YAML), so a crafted file could still mislead it; it stops every plain
//! or near-miss bomb.

use super::yaml::MAX_DEPTH;

/// The deepest flow nesting accepted; the same bound as any other nesting.
pub const MAX_FLOW_DEPTH: usize = MAX_DEPTH;

/// Where the scan found collections nested too deeply (1-based line and column).
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// What is nested: flow collections, or block sequences opened on one line (`- - - x`,
    /// cheap to write and costly to hold: the parser keeps an event per level).
    pub what: &'static str,
    /// The line of the bracket past the bound.
    pub line: usize,
    /// Its column (characters).
    pub column: usize,
}

/// Checks that `text` nests flow collections at most [`MAX_FLOW_DEPTH`] deep.
pub fn check(text: &str) -> Result<(), TooDeep> {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        depth: 0,
        hidden: 0,
        in_plain: false,
        entries: 0,
    };
    while s.i < s.b.len() {
        s.step()?;
    }
    Ok(())
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    /// Open flow collections, as the scan understands the text.
    depth: usize,
    /// Brackets opened inside quotes and comments and not closed there: counted against the
    /// bound in case the scan misread what is quoted.
    hidden: usize,
    /// Inside a plain (unquoted) scalar.
    in_plain: bool,
    /// Block sequence entries (`- `) opened on this line.
    entries: usize,
}

impl Scan<'_> {
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(b'\n')
    }

    fn blank_at(&self, i: usize) -> bool {
        matches!(self.at(i), b' ' | b'\t' | b'\r' | b'\n')
    }

    fn flow_indicator_at(&self, i: usize) -> bool {
        matches!(self.at(i), b',' | b'[' | b']' | b'{' | b'}')
    }

    fn too_deep(&self, what: &'static str) -> TooDeep {
        let column = self.b[self.line_start..self.i]
            .iter()
            .filter(|c| (**c & 0xC0) != 0x80)
            .count()
            + 1;
        TooDeep {
            what,
            line: self.line,
            column,
        }
    }

    fn open(&mut self) -> Result<(), TooDeep> {
        self.depth += 1;
        if self.depth + self.hidden > MAX_FLOW_DEPTH {
            return Err(self.too_deep(FLOW));
        }
        Ok(())
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start = self.i + 1;
        self.entries = 0;
    }

    /// One byte (or construct) of the text.
    fn step(&mut self) -> Result<(), TooDeep> {
        let c = self.b[self.i];
        let prev_blank = self.i == 0 || self.blank_at(self.i - 1);
        match c {
            b'\n' => {
                self.newline();
                // Block context: a new line starts a new token. In flow context a plain
                // scalar goes on over line breaks.
                if self.depth == 0 {
                    self.in_plain = false;
                }
                self.i += 1;
                return Ok(());
            }
            b' ' | b'\t' | b'\r' => {
                self.i += 1;
                return Ok(());
            }
            b'#' if prev_blank || !self.in_plain => return self.region(Region::Comment),
            _ => {}
        }
        if self.in_plain && !self.plain_ends_here(c) {
            self.i += 1;
            return Ok(());
        }
        self.in_plain = false;
        self.token(c)
    }

    /// Whether a plain scalar ends before `c`: at a flow indicator in flow context, or at a
    /// value indicator (`: `).
    fn plain_ends_here(&self, c: u8) -> bool {
        let flow = self.depth > 0;
        (flow && self.flow_indicator_at(self.i))
            || (c == b':'
                && (self.blank_at(self.i + 1) || (flow && self.flow_indicator_at(self.i + 1))))
    }

    /// A token starting at byte `c`.
    fn token(&mut self, c: u8) -> Result<(), TooDeep> {
        let line_start = self.i == self.line_start;
        match c {
            b'[' | b'{' => self.open()?,
            b']' | b'}' | b',' => {
                if c != b',' {
                    self.depth = self.depth.saturating_sub(1);
                }
            }
            b'"' => return self.region(Region::Double),
            b'\'' => return self.region(Region::Single),
            b'-' | b'.' if line_start && self.document_marker() => self.i += 2,
            b'%' if line_start => return self.region(Region::Comment),
            // Indicators, as libyaml reads them: in flow context `?` and `:` always are.
            b'-' if self.blank_at(self.i + 1) => {
                if self.depth == 0 {
                    self.entries += 1;
                    if self.entries > MAX_FLOW_DEPTH {
                        return Err(self.too_deep(BLOCK));
                    }
                }
            }
            b'?' | b':' if self.depth > 0 || self.blank_at(self.i + 1) => {}
            b'&' | b'*' | b'!' => self.skip_property(),
            _ => self.in_plain = true,
        }
        self.i += 1;
        Ok(())
    }

    fn document_marker(&self) -> bool {
        let c = self.at(self.i);
        self.at(self.i + 1) == c && self.at(self.i + 2) == c && self.blank_at(self.i + 3)
    }

    /// An anchor, alias or tag: up to the next blank (or flow indicator in flow context).
    fn skip_property(&mut self) {
        while self.i + 1 < self.b.len()
            && !(self.blank_at(self.i + 1) || self.depth > 0 && self.flow_indicator_at(self.i + 1))
        {
            self.i += 1;
        }
    }

    /// A comment (to the end of the line) or a quoted scalar (to its closing quote). Brackets
    /// inside count against the bound, net of those closed inside.
    fn region(&mut self, kind: Region) -> Result<(), TooDeep> {
        let mut net = 0usize;
        self.i += 1;
        while self.i < self.b.len() {
            let c = self.b[self.i];
            match (kind, c) {
                (Region::Comment, b'\n') => break,
                (Region::Double, b'\\') => self.i += 1,
                (Region::Double, b'"') => {
                    self.i += 1;
                    break;
                }
                (Region::Single, b'\'') if self.at(self.i + 1) == b'\'' => self.i += 1,
                (Region::Single, b'\'') => {
                    self.i += 1;
                    break;
                }
                (_, b'\n') => self.newline(),
                // `${` is a placeholder, common in quoted values.
                (Region::Double | Region::Single, b'{') if self.b[self.i - 1] == b'$' => {}
                (_, b'[' | b'{') => net += 1,
                (_, b']' | b'}') => net = net.saturating_sub(1),
                _ => {}
            }
            self.i += 1;
        }
        self.hidden += net;
        if self.depth + self.hidden > MAX_FLOW_DEPTH {
            return Err(self.too_deep(FLOW));
        }
        Ok(())
    }
}

const FLOW: &str = "flow collections ([...] or {...})";
const BLOCK: &str = "block sequences on one line (- - ...)";

#[derive(Clone, Copy)]
enum Region {
    Comment,
    Double,
    Single,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> bool {
        check(text).is_ok()
    }

    #[test]
    fn ordinary_yaml_passes() {
        assert!(ok(
            "a: [1, {b: c}]\nd: \"[unclosed\"\ne: it's [fine\n# [ comment\nf: '['\n"
        ));
        assert!(ok("g: {\"json\": [1, 2, {\"x\": \"]\"}]}\nh: |\n  [text\n"));
        let deep = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_FLOW_DEPTH),
            "]".repeat(MAX_FLOW_DEPTH)
        );
        assert!(ok(&deep));
        let many = "b: [x, {y: z}]\n".repeat(10_000);
        assert!(ok(&many), "depth, not count");
    }

    #[test]
    fn deep_flow_is_refused_with_its_position() {
        let deep = format!("a: {}1\n", "[".repeat(MAX_FLOW_DEPTH + 1));
        assert_eq!(
            check(&deep),
            Err(TooDeep {
                what: FLOW,
                line: 1,
                column: 4 + MAX_FLOW_DEPTH
            })
        );
        assert!(!ok(&format!("a: {}1", "{a: ".repeat(100))));
        assert!(!ok(&format!("a: {}1", "[\n".repeat(100))));
        assert!(!ok(&format!("--- {}", "[".repeat(100))));
        let dashes = format!("a:\n  {}x", "- ".repeat(100));
        let err = check(&dashes).unwrap_err();
        assert_eq!((err.what, err.line), (BLOCK, 2));
        assert!(ok(&format!("a:\n  {}x", "- ".repeat(MAX_FLOW_DEPTH))));
    }

    #[test]
    fn closers_hidden_in_quotes_and_comments_do_not_count() {
        assert!(!ok(&format!("a: {}", "[ \"]\", ".repeat(100))));
        assert!(!ok(&format!("a: {}", "[ ']', ".repeat(100))));
        assert!(!ok(&format!("a: {}", "[ # ]\n".repeat(100))));
        assert!(!ok(&format!("a: [x\"y, {}", "[ \"]\", ".repeat(100))));
        assert!(!ok(&format!("a: [it's, {}", "[ ']', ".repeat(100))));
        assert!(!ok(&format!("\"k #\": {}", "[".repeat(100))));
        assert!(!ok(&format!("a: \"\n{}\n\"", "[".repeat(100))));
        assert!(!ok(&format!("a: {}", "[{\"a\":\"]\"}, ".repeat(100))));
    }
}
