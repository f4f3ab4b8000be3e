//! Recursive-descent parser producing the AST that [`super::eval`] walks.
//!
//! Precedence, lowest first (as in SpEL): `? :`, `or`/`||`, `and`/`&&`, comparisons (not
//! chainable), `+ -`, `* / %`, unary `- + ! not`, primary.

use serde_json::Value;

use super::lexer::{tokenize, SyntaxError, Tok, Token};

/// Maximum recursion of the parser: parentheses, brackets, unary operators and ternaries.
pub(super) const MAX_NESTING: usize = 64;
/// Maximum height of the syntax tree (bounds evaluation recursion, e.g. `1+1+...+1`).
pub(super) const MAX_HEIGHT: usize = 256;

/// A syntax-tree node with its height (1 for a leaf).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub kind: Kind,
    pub height: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Lit(Value),
    /// `headers...` or `payload...` followed by property / index segments.
    Path(Root, Vec<Seg>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    Headers,
    Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    /// `.name` or `['name']`.
    Key(String),
    /// `[3]`.
    Index(i64),
    /// `[expr]` with a non-literal index, evaluated at run time.
    Dyn(Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnOp {
    Neg,
    Plus,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

impl Node {
    fn leaf(kind: Kind) -> Node {
        Node { kind, height: 1 }
    }

    /// Whether any part of the tree reads `payload`.
    pub(super) fn uses_payload(&self) -> bool {
        match &self.kind {
            Kind::Lit(_) => false,
            Kind::Path(root, segs) => {
                *root == Root::Payload
                    || segs
                        .iter()
                        .any(|s| matches!(s, Seg::Dyn(n) if n.uses_payload()))
            }
            Kind::Unary(_, n) => n.uses_payload(),
            Kind::Binary(_, l, r) => l.uses_payload() || r.uses_payload(),
            Kind::Cond(c, a, b) => c.uses_payload() || a.uses_payload() || b.uses_payload(),
        }
    }
}

/// Parses a whole expression.
pub(super) fn parse(src: &str) -> Result<Node, SyntaxError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let node = p.ternary()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let msg = match &t.tok {
            Tok::Ident(s) if is_unsupported_operator(s) => {
                format!("the '{s}' operator is not supported")
            }
            Tok::LParen => "method and function calls are not supported".to_owned(),
            other => format!(
                "unexpected {} after a complete expression",
                other.describe()
            ),
        };
        return Err((t.col, msg));
    }
    Ok(node)
}

fn is_unsupported_operator(s: &str) -> bool {
    ["instanceof", "matches", "between"]
        .iter()
        .any(|k| s.eq_ignore_ascii_case(k))
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "div",
    "mod",
    "instanceof",
    "matches",
    "between",
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// The height of a node over `children`, or an error when the tree gets too tall.
fn height_over(children: &[&Node], col: usize) -> Result<usize, SyntaxError> {
    let height = 1 + children.iter().map(|c| c.height).max().unwrap_or(0);
    if height > MAX_HEIGHT {
        return Err((
            col,
            format!("expression is too complex (syntax tree deeper than {MAX_HEIGHT})"),
        ));
    }
    Ok(height)
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.pos + ahead).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, SyntaxError> {
        let t = self.peek();
        if t.tok == tok {
            Ok(self.bump())
        } else {
            Err((
                t.col,
                format!("expected {what}, found {}", t.tok.describe()),
            ))
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err((
                self.peek().col,
                format!("expression is nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A full expression. Callers that recurse (parentheses, brackets) count the nesting level.
    fn ternary(&mut self) -> Result<Node, SyntaxError> {
        let cond = self.or()?;
        let out = if self.peek().tok == Tok::Question {
            let col = self.bump().col;
            self.enter()?;
            let a = self.ternary()?;
            self.expect(Tok::Colon, "':' of the conditional operator")?;
            let b = self.ternary()?;
            self.leave();
            let height = height_over(&[&cond, &a, &b], col)?;
            Node {
                kind: Kind::Cond(Box::new(cond), Box::new(a), Box::new(b)),
                height,
            }
        } else {
            cond
        };
        Ok(out)
    }

    fn or(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.and()?;
        while self.peek().tok == Tok::OrOr || self.is_kw("or") {
            let col = self.bump().col;
            let right = self.and()?;
            left = binary(BinOp::Or, left, right, col)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.comparison()?;
        while self.peek().tok == Tok::AndAnd || self.is_kw("and") {
            let col = self.bump().col;
            let right = self.comparison()?;
            left = binary(BinOp::And, left, right, col)?;
        }
        Ok(left)
    }

    fn comparison_op(&self) -> Option<BinOp> {
        let op = match &self.peek().tok {
            Tok::EqEq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                "eq" => BinOp::Eq,
                "ne" => BinOp::Ne,
                "lt" => BinOp::Lt,
                "le" => BinOp::Le,
                "gt" => BinOp::Gt,
                "ge" => BinOp::Ge,
                _ => return None,
            },
            _ => return None,
        };
        Some(op)
    }

    fn comparison(&mut self) -> Result<Node, SyntaxError> {
        let left = self.sum()?;
        let Some(op) = self.comparison_op() else {
            return Ok(left);
        };
        let col = self.bump().col;
        let right = self.sum()?;
        if self.comparison_op().is_some() {
            return Err((
                self.peek().col,
                "comparisons cannot be chained; combine them with 'and' or use parentheses"
                    .to_owned(),
            ));
        }
        binary(op, left, right, col)
    }

    fn sum(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(left),
            };
            let col = self.bump().col;
            let right = self.product()?;
            left = binary(op, left, right, col)?;
        }
    }

    fn product(&mut self) -> Result<Node, SyntaxError> {
        let mut left = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ if self.is_kw("div") => BinOp::Div,
                _ if self.is_kw("mod") => BinOp::Rem,
                _ => return Ok(left),
            };
            let col = self.bump().col;
            let right = self.unary()?;
            left = binary(op, left, right, col)?;
        }
    }

    fn unary(&mut self) -> Result<Node, SyntaxError> {
        let op = match &self.peek().tok {
            Tok::Minus => UnOp::Neg,
            Tok::Plus => UnOp::Plus,
            Tok::Bang => UnOp::Not,
            _ if self.is_kw("not") => UnOp::Not,
            _ => return self.primary(),
        };
        let col = self.bump().col;
        // `-9223372036854775808` is i64::MIN, which has no positive literal.
        if op == UnOp::Neg && *self.peek_at(0) == Tok::Int(1u64 << 63) {
            self.bump();
            return Ok(Node::leaf(Kind::Lit(Value::from(i64::MIN))));
        }
        self.enter()?;
        let operand = self.unary()?;
        self.leave();
        let height = height_over(&[&operand], col)?;
        Ok(Node {
            kind: Kind::Unary(op, Box::new(operand)),
            height,
        })
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let t = self.bump();
        let col = t.col;
        let lit = match t.tok {
            Tok::Int(n) => match i64::try_from(n) {
                Ok(i) => Value::from(i),
                Err(_) => return Err((col, format!("integer literal {n} is out of range"))),
            },
            Tok::Float(f) => Value::from(f),
            Tok::Str(s) => Value::String(s),
            Tok::LParen => {
                self.enter()?;
                let inner = self.ternary()?;
                self.expect(Tok::RParen, "')'")?;
                self.leave();
                self.no_navigation()?;
                return Ok(inner);
            }
            Tok::Ident(name) => return self.identifier(name, col),
            other => {
                return Err((
                    col,
                    format!("expected an operand, found {}", other.describe()),
                ))
            }
        };
        self.no_navigation()?;
        Ok(Node::leaf(Kind::Lit(lit)))
    }

    /// Rejects `.x` / `[i]` / `(...)` after something that is not `headers` or `payload`.
    fn no_navigation(&self) -> Result<(), SyntaxError> {
        let t = self.peek();
        match t.tok {
            Tok::Dot | Tok::LBracket => Err((
                t.col,
                "property access and indexing are only supported on 'headers' and 'payload'"
                    .to_owned(),
            )),
            Tok::LParen => Err((
                t.col,
                "method and function calls are not supported".to_owned(),
            )),
            _ => Ok(()),
        }
    }

    fn identifier(&mut self, name: String, col: usize) -> Result<Node, SyntaxError> {
        if self.peek().tok == Tok::LParen {
            let msg = match name.as_str() {
                "T" => "type references ('T(...)') are not supported".to_owned(),
                "new" => "constructor calls ('new ...') are not supported".to_owned(),
                _ => format!("function calls ('{name}(...)') are not supported"),
            };
            return Err((col, msg));
        }
        let lower = name.to_ascii_lowercase();
        let lit = match lower.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        };
        if let Some(lit) = lit {
            self.no_navigation()?;
            return Ok(Node::leaf(Kind::Lit(lit)));
        }
        let root = match name.as_str() {
            "headers" => Root::Headers,
            "payload" => Root::Payload,
            "new" => {
                return Err((
                    col,
                    "constructor calls ('new ...') are not supported".to_owned(),
                ))
            }
            _ if KEYWORDS.contains(&lower.as_str()) => {
                return Err((
                    col,
                    format!("expected an operand, found the keyword '{name}'"),
                ))
            }
            _ => {
                return Err((
                    col,
                    format!(
                        "unknown identifier '{name}'; only 'headers', 'payload' and literals are \
                         supported (use headers['a-b'] for header names containing '-')"
                    ),
                ))
            }
        };
        self.path(root, col)
    }

    fn path(&mut self, root: Root, col: usize) -> Result<Node, SyntaxError> {
        let mut segs = Vec::new();
        let mut height = 1;
        loop {
            match self.peek().tok {
                Tok::Dot => {
                    self.bump();
                    let t = self.bump();
                    let Tok::Ident(name) = t.tok else {
                        return Err((
                            t.col,
                            format!(
                                "expected a property name after '.', found {}",
                                t.tok.describe()
                            ),
                        ));
                    };
                    if self.peek().tok == Tok::LParen {
                        return Err((
                            t.col,
                            format!("method calls ('{name}(...)') are not supported"),
                        ));
                    }
                    segs.push(Seg::Key(name));
                }
                Tok::LBracket => {
                    self.bump();
                    self.enter()?;
                    let index = self.ternary()?;
                    self.expect(Tok::RBracket, "']'")?;
                    self.leave();
                    height = height.max(index.height + 1);
                    segs.push(match index.kind {
                        Kind::Lit(Value::String(s)) => Seg::Key(s),
                        Kind::Lit(Value::Number(ref n)) if n.is_i64() => {
                            Seg::Index(n.as_i64().unwrap_or_default())
                        }
                        _ => Seg::Dyn(Box::new(index)),
                    });
                }
                Tok::LParen => {
                    return Err((
                        self.peek().col,
                        "method and function calls are not supported".to_owned(),
                    ))
                }
                _ => break,
            }
        }
        if height > MAX_HEIGHT {
            return Err((
                col,
                format!("expression is too complex (syntax tree deeper than {MAX_HEIGHT})"),
            ));
        }
        Ok(Node {
            kind: Kind::Path(root, segs),
            height,
        })
    }
}

fn binary(op: BinOp, left: Node, right: Node, col: usize) -> Result<Node, SyntaxError> {
    let height = height_over(&[&left, &right], col)?;
    Ok(Node {
        kind: Kind::Binary(op, Box::new(left), Box::new(right)),
        height,
    })
}
