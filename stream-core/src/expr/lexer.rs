//! Tokenizer for the expression subset. Columns are 1-based and count characters (not bytes).

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An identifier: a root (`headers`, `payload`), a keyword (`and`, `true`, ...) or a
    /// property name; the parser decides from context.
    Ident(String),
    /// A string literal, quotes removed and doubled quotes unescaped.
    Str(String),
    /// An integer literal's magnitude; the parser range-checks it (so `-9223372036854775808`
    /// works).
    Int(u64),
    /// A decimal literal.
    Float(f64),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Question,
    Colon,
    /// Only ever an error (argument lists and inline lists are not supported).
    Comma,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Str(_) => "a string literal".to_owned(),
            Tok::Int(_) | Tok::Float(_) => "a number".to_owned(),
            Tok::Dot => "'.'".to_owned(),
            Tok::LBracket => "'['".to_owned(),
            Tok::RBracket => "']'".to_owned(),
            Tok::LParen => "'('".to_owned(),
            Tok::RParen => "')'".to_owned(),
            Tok::Plus => "'+'".to_owned(),
            Tok::Minus => "'-'".to_owned(),
            Tok::Star => "'*'".to_owned(),
            Tok::Slash => "'/'".to_owned(),
            Tok::Percent => "'%'".to_owned(),
            Tok::EqEq => "'=='".to_owned(),
            Tok::Ne => "'!='".to_owned(),
            Tok::Lt => "'<'".to_owned(),
            Tok::Le => "'<='".to_owned(),
            Tok::Gt => "'>'".to_owned(),
            Tok::Ge => "'>='".to_owned(),
            Tok::AndAnd => "'&&'".to_owned(),
            Tok::OrOr => "'||'".to_owned(),
            Tok::Bang => "'!'".to_owned(),
            Tok::Question => "'?'".to_owned(),
            Tok::Colon => "':'".to_owned(),
            Tok::Comma => "','".to_owned(),
            Tok::Eof => "the end of the expression".to_owned(),
        }
    }
}

/// A token and the column of its first character.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub col: usize,
}

/// A lexing or parsing failure: 1-based column and message.
pub(super) type SyntaxError = (usize, String);

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = if is_ident_start(c) {
            let end = (i + 1..chars.len())
                .find(|&j| !is_ident_char(chars[j]))
                .unwrap_or(chars.len());
            (Tok::Ident(chars[i..end].iter().collect()), end - i)
        } else if c.is_ascii_digit() {
            lex_number(&chars, i)?
        } else if c == '\'' || c == '"' {
            lex_string(&chars, i)?
        } else {
            lex_symbol(&chars, i)?
        };
        out.push(Token { tok, col: i + 1 });
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        col: chars.len() + 1,
    });
    Ok(out)
}

/// Lexes a string literal quoted by `chars[start]` (`'` or `"`; the quote doubled stands for
/// itself); returns the token and its length.
fn lex_string(chars: &[char], start: usize) -> Result<(Tok, usize), SyntaxError> {
    let quote = chars[start];
    let mut s = String::new();
    let mut j = start + 1;
    loop {
        match chars.get(j).copied() {
            None => {
                let message = format!("unterminated string literal (missing closing {quote})");
                return Err((start + 1, message));
            }
            Some(q) if q == quote && chars.get(j + 1) == Some(&quote) => {
                s.push(quote);
                j += 2;
            }
            Some(q) if q == quote => return Ok((Tok::Str(s), j + 1 - start)),
            Some(other) => {
                s.push(other);
                j += 1;
            }
        }
    }
}

/// Lexes an operator or punctuation at `i`; SpEL syntax this subset lacks is an error that
/// names it.
fn lex_symbol(chars: &[char], i: usize) -> Result<(Tok, usize), SyntaxError> {
    let at = |j: usize| chars.get(j).copied();
    let (c, next) = (chars[i], at(i + 1));
    let unsupported = |what: &str| Err((i + 1, format!("{what} not supported")));
    Ok(match c {
        '.' => match (next, at(i + 2)) {
            (Some('?' | '!' | '^' | '$'), Some('[')) => {
                return unsupported(
                    "collection selection and projection ('.?[', '.![', '.^[', '.$[') are",
                )
            }
            _ => (Tok::Dot, 1),
        },
        '[' => (Tok::LBracket, 1),
        ']' => (Tok::RBracket, 1),
        '(' => (Tok::LParen, 1),
        ')' => (Tok::RParen, 1),
        '+' => (Tok::Plus, 1),
        '-' => (Tok::Minus, 1),
        '*' => (Tok::Star, 1),
        '/' => (Tok::Slash, 1),
        '%' => (Tok::Percent, 1),
        '=' if next == Some('=') => (Tok::EqEq, 2),
        '=' => {
            let message = "assignment ('=') is not supported; use '==' to compare";
            return Err((i + 1, message.to_owned()));
        }
        '!' if next == Some('=') => (Tok::Ne, 2),
        '!' => (Tok::Bang, 1),
        '<' if next == Some('=') => (Tok::Le, 2),
        '<' => (Tok::Lt, 1),
        '>' if next == Some('=') => (Tok::Ge, 2),
        '>' => (Tok::Gt, 1),
        '&' if next == Some('&') => (Tok::AndAnd, 2),
        '&' => return unsupported("factory bean references ('&name') are"),
        '|' if next == Some('|') => (Tok::OrOr, 2),
        '?' if next == Some('.') => return unsupported("safe navigation ('?.') is"),
        '?' if next == Some(':') => return unsupported("the Elvis operator ('?:') is"),
        '?' => (Tok::Question, 1),
        ':' => (Tok::Colon, 1),
        ',' => (Tok::Comma, 1),
        '@' => return unsupported("bean references ('@name') are"),
        '#' => return unsupported("variables and functions ('#name') are"),
        '{' | '}' => return unsupported("inline lists and maps ('{...}') are"),
        '^' => return unsupported("the power operator ('^') is"),
        _ => return Err((i + 1, format!("unexpected character {c:?}"))),
    })
}

/// Lexes `123`, `1.5`, `2e10`, `1.5E-3` starting at `start`; returns the token and its length.
fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize), SyntaxError> {
    let at = |j: usize| chars.get(j).copied();
    let digit = |j: usize| at(j).is_some_and(|c| c.is_ascii_digit());
    let mut j = start;
    while digit(j) {
        j += 1;
    }
    let mut is_float = false;
    // `1.x` is an integer followed by '.', only `1.5` is a decimal.
    if at(j) == Some('.') && digit(j + 1) {
        is_float = true;
        j += 1;
        while digit(j) {
            j += 1;
        }
    }
    if matches!(at(j), Some('e' | 'E')) {
        let k = if matches!(at(j + 1), Some('+' | '-')) {
            j + 2
        } else {
            j + 1
        };
        if digit(k) {
            is_float = true;
            j = k;
            while digit(j) {
                j += 1;
            }
        }
    }
    if at(j).is_some_and(is_ident_char) {
        return Err((
            start + 1,
            "invalid number literal (suffixes such as 'L' or 'd' and hex literals are not \
             supported)"
                .to_owned(),
        ));
    }
    let text: String = chars[start..j].iter().collect();
    let tok = if is_float {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Tok::Float(f),
            _ => return Err((start + 1, format!("number literal {text} is out of range"))),
        }
    } else {
        match text.parse::<u64>() {
            Ok(n) => Tok::Int(n),
            Err(_) => return Err((start + 1, format!("integer literal {text} is out of range"))),
        }
    };
    Ok((tok, j - start))
}
