//! The rvsadm ↔ rvsd wire protocol on the control socket.
//!
//! One request and one reply per connection. Every string travels as a
//! 4-byte big-endian length followed by that many bytes of UTF-8.
//!
//! - request: `"RVS1"`, argument count (u32 BE), the arguments (without the
//!   program name), then the standard input text (empty unless `-R`);
//! - reply: exit status (i32 BE), stdout text, stderr text.
//!
//! Sizes are capped ([`MAX_STRING`], [`MAX_ARGS`]) so a broken or hostile
//! peer cannot make the daemon allocate without bound.

use std::io::{self, Read, Write};

/// Magic and version at the start of every request.
pub const MAGIC: &[u8; 4] = b"RVS1";
/// Longest string accepted (16 MiB: a large `-R` input).
pub const MAX_STRING: u32 = 16 << 20;
/// Most arguments accepted.
pub const MAX_ARGS: u32 = 1024;

/// What rvsadm sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The arguments, without the program name.
    pub args: Vec<String>,
    /// Standard input (for `-R`), or empty.
    pub stdin: String,
}

/// What rvsd answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// rvsadm's exit status.
    pub status: i32,
    /// Text for rvsadm's stdout.
    pub stdout: String,
    /// Text for rvsadm's stderr.
    pub stderr: String,
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

fn write_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    let n = u32::try_from(s.len())
        .ok()
        .filter(|n| *n <= MAX_STRING)
        .ok_or_else(|| bad("string too long"))?;
    w.write_all(&n.to_be_bytes())?;
    w.write_all(s.as_bytes())
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_str(r: &mut impl Read) -> io::Result<String> {
    let n = read_u32(r)?;
    if n > MAX_STRING {
        return Err(bad("string too long"));
    }
    let mut buf = Vec::new();
    r.take(u64::from(n)).read_to_end(&mut buf)?;
    if buf.len() != n as usize {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    String::from_utf8(buf).map_err(|_| bad("string is not UTF-8"))
}

impl Request {
    /// Writes the request in one buffer.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        let n = u32::try_from(self.args.len())
            .ok()
            .filter(|n| *n <= MAX_ARGS)
            .ok_or_else(|| bad("too many arguments"))?;
        buf.extend_from_slice(&n.to_be_bytes());
        for a in &self.args {
            write_str(&mut buf, a)?;
        }
        write_str(&mut buf, &self.stdin)?;
        w.write_all(&buf)?;
        w.flush()
    }

    /// Reads a request.
    pub fn read_from(r: &mut impl Read) -> io::Result<Request> {
        let mut magic = [0u8; 4];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad("not an rvsadm request (bad magic)"));
        }
        let n = read_u32(r)?;
        if n > MAX_ARGS {
            return Err(bad("too many arguments"));
        }
        let args = (0..n).map(|_| read_str(r)).collect::<io::Result<_>>()?;
        let stdin = read_str(r)?;
        Ok(Request { args, stdin })
    }
}

impl Reply {
    /// Writes the reply in one buffer.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::new();
        buf.extend_from_slice(&self.status.to_be_bytes());
        write_str(&mut buf, &self.stdout)?;
        write_str(&mut buf, &self.stderr)?;
        w.write_all(&buf)?;
        w.flush()
    }

    /// Reads a reply.
    pub fn read_from(r: &mut impl Read) -> io::Result<Reply> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b)?;
        let status = i32::from_be_bytes(b);
        let stdout = read_str(r)?;
        let stderr = read_str(r)?;
        Ok(Reply {
            status,
            stdout,
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let q = Request {
            args: vec!["-A".into(), "-t".into(), "[2001:db8::1]:80".into()],
            stdin: "-C\nü\n".into(),
        };
        let mut buf = Vec::new();
        q.write_to(&mut buf).unwrap();
        assert_eq!(Request::read_from(&mut buf.as_slice()).unwrap(), q);
        let p = Reply {
            status: 255,
            stdout: String::new(),
            stderr: "Service already exists\n".into(),
        };
        let mut buf = Vec::new();
        p.write_to(&mut buf).unwrap();
        assert_eq!(Reply::read_from(&mut buf.as_slice()).unwrap(), p);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(Request::read_from(&mut &b"GET / HTTP/1.1\r\n"[..]).is_err());
        let mut huge = Vec::from(&MAGIC[..]);
        huge.extend_from_slice(&1u32.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Request::read_from(&mut huge.as_slice()).is_err());
        let q = Request {
            args: vec!["-Ln".into()],
            stdin: String::new(),
        };
        let mut buf = Vec::new();
        q.write_to(&mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(Request::read_from(&mut &buf[..cut]).is_err(), "cut {cut}");
        }
    }
}
