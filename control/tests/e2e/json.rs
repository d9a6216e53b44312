//! A parser for the flat JSON objects the test clients print, one per line
//! (string, number, bool and null values; no nesting), so the harness needs
//! no JSON crate.

use std::collections::BTreeMap;

/// A JSON value of a flat object.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

/// One flat JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Obj(pub BTreeMap<String, Val>);

impl Obj {
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.0.get(key) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub fn bool(&self, key: &str) -> bool {
        matches!(self.0.get(key), Some(Val::Bool(true)))
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        match self.0.get(key) {
            Some(Val::Num(n)) if *n >= 0.0 => Some(*n as u64),
            _ => None,
        }
    }
    pub fn is_null(&self, key: &str) -> bool {
        matches!(self.0.get(key), None | Some(Val::Null))
    }
}

/// Parses every line of `text` that is a JSON object; other lines are
/// skipped.
pub fn parse_lines(text: &str) -> Vec<Obj> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| parse(l).ok())
        .collect()
}

/// Parses one flat JSON object.
pub fn parse(text: &str) -> Result<Obj, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let obj = p.object()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing characters at {} in {text:?}", p.i));
    }
    Ok(obj)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }
    fn object(&mut self) -> Result<Obj, String> {
        self.eat(b'{')?;
        let mut map = BTreeMap::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Obj(map));
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.eat(b':')?;
            let v = self.value()?;
            map.insert(k, v);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Obj(map));
                }
                _ => return Err(format!("expected ',' or '}}' at {}", self.i)),
            }
        }
    }
    fn value(&mut self) -> Result<Val, String> {
        self.ws();
        let rest = &self.s[self.i..];
        for (word, v) in [
            ("null", Val::Null),
            ("true", Val::Bool(true)),
            ("false", Val::Bool(false)),
        ] {
            if rest.starts_with(word.as_bytes()) {
                self.i += word.len();
                return Ok(v);
            }
        }
        match rest.first() {
            Some(b'"') => Ok(Val::Str(self.string()?)),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                t.parse().map(Val::Num).map_err(|e| format!("{t:?}: {e}"))
            }
            _ => Err(format!("unexpected value at {}", self.i)),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("bad \\u")?;
                            self.i += 4;
                            let mut cp = u32::from_str_radix(
                                std::str::from_utf8(hex).map_err(|e| e.to_string())?,
                                16,
                            )
                            .map_err(|e| e.to_string())?;
                            // A surrogate pair (json.dumps escapes non-ASCII).
                            if (0xd800..0xdc00).contains(&cp)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let lo = self.s.get(self.i + 2..self.i + 6).ok_or("bad \\u")?;
                                let lo = u32::from_str_radix(
                                    std::str::from_utf8(lo).map_err(|e| e.to_string())?,
                                    16,
                                )
                                .map_err(|e| e.to_string())?;
                                self.i += 6;
                                cp = 0x10000
                                    + ((cp - 0xd800) << 10)
                                    + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            char::from_u32(cp).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}
