//! The C libraries Redis bundles with its Lua, reimplemented: `bit` (LuaBitOp), `cjson`
//! (lua-cjson 2.1), `cmsgpack` (lua-cmsgpack) and `struct` (Roberto Ierusalimschy's struct).
//! Errors go through the sentinel convention (`super::sentinel_err`) so they are raised
//! like C's `luaL_error` (no position prefix).

use mlua::{LightUserData, Lua, MultiValue, Table, Value, Variadic};

use super::{deep, lua_num_str, raise_lib};

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_)) | Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::LightUserData(_)) | Some(Value::UserData(_)) => "userdata",
        Some(Value::Thread(_)) => "thread",
        _ => "userdata",
    }
}

/// `luaL_checknumber`: numbers and numeric strings.
fn check_num(args: &[Value], i: usize, fname: &str) -> Result<f64, String> {
    let v = args.get(i);
    let n = match v {
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(Value::String(s)) => {
            let st = s.to_string_lossy();
            let t = st.trim();
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok().map(|x| x as f64)
            } else {
                t.parse::<f64>().ok()
            }
        }
        _ => None,
    };
    n.ok_or_else(|| {
        format!(
            "bad argument #{} to '{fname}' (number expected, got {})",
            i + 1,
            type_name(v)
        )
    })
}

fn reg(
    lua: &Lua,
    t: &Table,
    name: &'static str,
    f: fn(&Lua, &[Value]) -> Result<MultiValue, String>,
) -> mlua::Result<()> {
    let func = lua.create_function(move |lua, args: Variadic<Value>| match f(lua, &args) {
        Ok(v) => Ok(v),
        Err(e) => Err(raise_lib(lua, &e)),
    })?;
    t.raw_set(name, func)
}

/// Convert an mlua error inside a library function into a message.
fn me(e: mlua::Error) -> String {
    e.to_string()
}

thread_local! {
    /// redis-server's lrand48 state (one per process there; one per node thread here).
    static RAND48: std::cell::Cell<u64> = const { std::cell::Cell::new(0x1234_ABCD_330E) };
}

/// Redis's `redisLrand48`: the 48-bit LCG of lrand48, top 31 bits.
fn lrand48() -> i32 {
    RAND48.with(|x| {
        let n = (x.get().wrapping_mul(0x5DEECE66D).wrapping_add(0xB)) & 0xFFFF_FFFF_FFFF;
        x.set(n);
        (n >> 17) as i32
    })
}

fn srand48(seed: i32) {
    RAND48.with(|x| x.set((((seed as u32) as u64) << 16) | 0x330E));
}

pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    // Redis replaces math.random/randomseed with its own PRNG (same sequence everywhere).
    if let Value::Table(math) = globals.raw_get::<Value>("math")? {
        reg(lua, &math, "random", |_, a| {
            let r = (lrand48() % i32::MAX) as f64 / i32::MAX as f64;
            let v = match a.len() {
                0 => r,
                1 => {
                    let u = check_num(a, 0, "random")? as i64;
                    if u < 1 {
                        return Err("bad argument #1 to 'random' (interval is empty)".into());
                    }
                    (r * u as f64).floor() + 1.0
                }
                2 => {
                    let l = check_num(a, 0, "random")? as i64;
                    let u = check_num(a, 1, "random")? as i64;
                    if l > u {
                        return Err("bad argument #2 to 'random' (interval is empty)".into());
                    }
                    (r * (u - l + 1) as f64).floor() + l as f64
                }
                _ => return Err("wrong number of arguments".into()),
            };
            Ok(MultiValue::from_vec(vec![Value::Number(v)]))
        })?;
        reg(lua, &math, "randomseed", |_, a| {
            srand48(check_num(a, 0, "randomseed")? as i64 as i32);
            Ok(MultiValue::new())
        })?;
    }
    let bit = lua.create_table()?;
    reg(lua, &bit, "tobit", |_, a| bit1(a, "tobit", |x| x))?;
    reg(lua, &bit, "bnot", |_, a| bit1(a, "bnot", |x| !x))?;
    reg(lua, &bit, "bswap", |_, a| {
        bit1(a, "bswap", |x| x.swap_bytes())
    })?;
    reg(lua, &bit, "band", |_, a| bitn(a, "band", |x, y| x & y))?;
    reg(lua, &bit, "bor", |_, a| bitn(a, "bor", |x, y| x | y))?;
    reg(lua, &bit, "bxor", |_, a| bitn(a, "bxor", |x, y| x ^ y))?;
    reg(lua, &bit, "lshift", |_, a| {
        bit2(a, "lshift", |x, n| x.wrapping_shl(n & 31))
    })?;
    reg(lua, &bit, "rshift", |_, a| {
        bit2(a, "rshift", |x, n| x.wrapping_shr(n & 31))
    })?;
    reg(lua, &bit, "arshift", |_, a| {
        bit2(a, "arshift", |x, n| ((x as i32) >> (n & 31)) as u32)
    })?;
    reg(lua, &bit, "rol", |_, a| {
        bit2(a, "rol", |x, n| x.rotate_left(n & 31))
    })?;
    reg(lua, &bit, "ror", |_, a| {
        bit2(a, "ror", |x, n| x.rotate_right(n & 31))
    })?;
    reg(lua, &bit, "tohex", |lua, a| {
        let x = tobit(check_num(a, 0, "tohex")?);
        let mut n: i64 = match a.get(1) {
            None | Some(Value::Nil) => 8,
            _ => tobit(check_num(a, 1, "tohex")?) as i32 as i64,
        };
        let upper = n < 0;
        if upper {
            n = -n;
        }
        let n = n.clamp(0, 8) as usize;
        let s = if upper {
            format!("{x:08X}")
        } else {
            format!("{x:08x}")
        };
        let s = &s[8 - n..];
        Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(s).map_err(me)?,
        )]))
    })?;
    globals.raw_set("bit", bit)?;

    let cjson = lua.create_table()?;
    reg(lua, &cjson, "encode", |lua, a| {
        if a.len() != 1 {
            return Err("bad argument #1 to 'encode' (expected 1 argument)".into());
        }
        let mut out = Vec::new();
        json_encode(&a[0], &mut out, 0)?;
        Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(&out).map_err(me)?,
        )]))
    })?;
    reg(lua, &cjson, "decode", |lua, a| {
        if a.len() != 1 {
            return Err("bad argument #1 to 'decode' (expected 1 argument)".into());
        }
        let s = match &a[0] {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Number(n) => lua_num_str(*n).into_bytes(),
            other => {
                return Err(format!(
                    "bad argument #1 to 'decode' (string expected, got {})",
                    type_name(Some(other))
                ))
            }
        };
        let mut p = JsonParser {
            lua,
            s: &s,
            pos: 0,
            depth: 0,
        };
        let v = p.value_top()?;
        Ok(MultiValue::from_vec(vec![v]))
    })?;
    cjson.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    for name in [
        "encode_keep_buffer",
        "encode_max_depth",
        "decode_max_depth",
        "encode_number_precision",
        "encode_sparse_array",
        "encode_invalid_numbers",
        "decode_invalid_numbers",
    ] {
        // Configuration knobs: accepted, defaults kept.
        reg(lua, &cjson, name, |_, _| Ok(MultiValue::new()))?;
    }
    cjson.raw_set("_NAME", "cjson")?;
    cjson.raw_set("_VERSION", "2.1.0")?;
    globals.raw_set("cjson", cjson)?;

    let mp = lua.create_table()?;
    reg(lua, &mp, "pack", |lua, a| {
        if a.is_empty() {
            return Err("MessagePack pack needs input.".into());
        }
        let mut out = Vec::new();
        for v in a {
            mp_encode(v, &mut out, 0);
        }
        Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(&out).map_err(me)?,
        )]))
    })?;
    reg(lua, &mp, "unpack", |lua, a| {
        let s = match a.first() {
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            _ => return Err("bad argument #1 to 'unpack' (string expected)".into()),
        };
        let mut pos = 0;
        let mut vals = Vec::new();
        while pos < s.len() {
            vals.push(mp_decode(lua, &s, &mut pos, 0)?);
        }
        Ok(MultiValue::from_vec(vals))
    })?;
    reg(lua, &mp, "unpack_one", |lua, a| {
        let s = match a.first() {
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            _ => return Err("bad argument #1 to 'unpack_one' (string expected)".into()),
        };
        let off = match a.get(1) {
            None | Some(Value::Nil) => 0,
            _ => check_num(a, 1, "unpack_one")? as i64,
        };
        if off < 0 || off as usize > s.len() {
            return Err("Start offset greater than input length".into());
        }
        let mut pos = off as usize;
        let v = mp_decode(lua, &s, &mut pos, 0)?;
        let next = if pos >= s.len() { -1 } else { pos as i64 };
        Ok(MultiValue::from_vec(vec![Value::Integer(next as _), v]))
    })?;
    mp.raw_set("_NAME", "cmsgpack")?;
    mp.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    globals.raw_set("cmsgpack", mp)?;

    let st = lua.create_table()?;
    reg(lua, &st, "pack", struct_pack)?;
    reg(lua, &st, "unpack", struct_unpack)?;
    reg(lua, &st, "size", |_, a| {
        let fmt = match a.first() {
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            _ => return Err("bad argument #1 to 'size' (string expected)".into()),
        };
        let mut total = 0usize;
        let mut f = Fmt::new(&fmt, "size");
        while let Some(item) = f.next_item()? {
            total += f.align_pad(total, &item);
            match item.kind {
                b's' => return Err("options 's' has no fixed size".into()),
                b'c' if item.size == 0 => return Err("options 'c0' has no fixed size".into()),
                _ => {
                    total = total
                        .checked_add(item.size)
                        .ok_or("bad argument #1 to 'size' (format too large)")?
                }
            }
        }
        Ok(MultiValue::from_vec(vec![Value::Integer(total as _)]))
    })?;
    globals.raw_set("struct", st)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// bit

/// LuaBitOp's normalisation: the number modulo 2^32 (rounded), as an unsigned word.
fn tobit(n: f64) -> u32 {
    let b = n + 6755399441055744.0; // 2^52 + 2^51
    b.to_bits() as u32
}

fn ret_bit(v: u32) -> Result<MultiValue, String> {
    Ok(MultiValue::from_vec(vec![Value::Integer(v as i32 as _)]))
}

fn bit1(a: &[Value], name: &str, f: fn(u32) -> u32) -> Result<MultiValue, String> {
    ret_bit(f(tobit(check_num(a, 0, name)?)))
}

fn bitn(a: &[Value], name: &str, f: fn(u32, u32) -> u32) -> Result<MultiValue, String> {
    let mut x = tobit(check_num(a, 0, name)?);
    for i in 1..a.len() {
        x = f(x, tobit(check_num(a, i, name)?));
    }
    ret_bit(x)
}

fn bit2(a: &[Value], name: &str, f: fn(u32, u32) -> u32) -> Result<MultiValue, String> {
    let x = tobit(check_num(a, 0, name)?);
    let n = tobit(check_num(a, 1, name)?);
    ret_bit(f(x, n))
}

// ---------------------------------------------------------------------------
// cjson

fn json_num(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(lua_num_str(n).as_bytes());
    Ok(())
}

fn json_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn json_encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    deep(|| json_encode_inner(v, out, depth))
}

fn json_encode_inner(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => json_num(*i as f64, out)?,
        Value::Number(n) => json_num(*n, out)?,
        Value::String(s) => json_str(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > 1000 {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            // lua_array_length: all keys positive integers -> array (unless too sparse).
            let mut max = 0i64;
            let mut items = 0i64;
            let mut is_array = true;
            for p in t.clone().pairs::<Value, Value>() {
                let (k, _) = p.map_err(me)?;
                let idx = match k {
                    Value::Integer(i) if i >= 1 => Some(i),
                    Value::Number(n) if n >= 1.0 && n.floor() == n => Some(n as i64),
                    _ => None,
                };
                match idx {
                    Some(i) => {
                        max = max.max(i);
                        items += 1;
                    }
                    None => {
                        is_array = false;
                        break;
                    }
                }
            }
            if is_array && max > items * 2 && max > 10 {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            if is_array && max > 0 {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    let v: Value = t.raw_get(i).map_err(me)?;
                    json_encode(&v, out, depth)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for p in t.clone().pairs::<Value, Value>() {
                    let (k, v) = p.map_err(me)?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => json_str(&s.as_bytes(), out),
                        Value::Integer(i) => {
                            out.push(b'"');
                            json_num(*i as f64, out)?;
                            out.push(b'"');
                        }
                        Value::Number(n) => {
                            out.push(b'"');
                            json_num(*n, out)?;
                            out.push(b'"');
                        }
                        _ => {
                            return Err(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            )
                        }
                    }
                    out.push(b':');
                    json_encode(&v, out, depth)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                type_name(Some(other))
            ))
        }
    }
    Ok(())
}

struct JsonParser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error => "T_ERROR",
        }
    }
}

impl<'a> JsonParser<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// Next token: (kind, start index, value, error text for T_ERROR).
    fn token(&mut self) -> Result<(Tok, usize, Value, &'static str), String> {
        self.skip_ws();
        let start = self.pos;
        let Some(&c) = self.s.get(self.pos) else {
            return Ok((Tok::End, start, Value::Nil, ""));
        };
        let punct = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = punct {
            self.pos += 1;
            return Ok((t, start, Value::Nil, ""));
        }
        match c {
            b'"' => self.string(start),
            b'-' | b'0'..=b'9' => {
                let mut e = self.pos + 1;
                while e < self.s.len()
                    && matches!(self.s[e], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' | b'x' | b'X' | b'a'..=b'd' | b'f' | b'A'..=b'D' | b'F')
                {
                    e += 1;
                }
                let txt = std::str::from_utf8(&self.s[self.pos..e]).unwrap_or("");
                match txt.parse::<f64>() {
                    Ok(n) => {
                        self.pos = e;
                        Ok((Tok::Num, start, Value::Number(n), ""))
                    }
                    Err(_) => Ok((Tok::Error, start, Value::Nil, "invalid number")),
                }
            }
            b't' if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok((Tok::Bool, start, Value::Boolean(true), ""))
            }
            b'f' if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok((Tok::Bool, start, Value::Boolean(false), ""))
            }
            b'n' if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok((
                    Tok::Null,
                    start,
                    Value::LightUserData(LightUserData(std::ptr::null_mut())),
                    "",
                ))
            }
            _ => Ok((Tok::Error, start, Value::Nil, "invalid token")),
        }
    }

    fn string(&mut self, start: usize) -> Result<(Tok, usize, Value, &'static str), String> {
        let mut out = Vec::new();
        let mut i = self.pos + 1;
        loop {
            let Some(&c) = self.s.get(i) else {
                return Ok((Tok::Error, start, Value::Nil, "unexpected end of string"));
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(i + 1) else {
                        return Ok((Tok::Error, start, Value::Nil, "invalid escape code"));
                    };
                    i += 2;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = |at: usize| -> Option<u32> {
                                let h = self.s.get(at..at + 4)?;
                                u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
                            };
                            let Some(mut cp) = hex(i) else {
                                return Ok((
                                    Tok::Error,
                                    start,
                                    Value::Nil,
                                    "invalid unicode escape code",
                                ));
                            };
                            i += 4;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.s.get(i..i + 2) != Some(b"\\u") {
                                    return Ok((
                                        Tok::Error,
                                        start,
                                        Value::Nil,
                                        "invalid unicode escape code",
                                    ));
                                }
                                let Some(lo) = hex(i + 2).filter(|l| (0xDC00..0xE000).contains(l))
                                else {
                                    return Ok((
                                        Tok::Error,
                                        start,
                                        Value::Nil,
                                        "invalid unicode escape code",
                                    ));
                                };
                                i += 6;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        _ => return Ok((Tok::Error, start, Value::Nil, "invalid escape code")),
                    }
                    continue;
                }
                c => out.push(c),
            }
            i += 1;
        }
        self.pos = i + 1;
        let v = Value::String(self.lua.create_string(&out).map_err(me)?);
        Ok((Tok::Str, start, v, ""))
    }

    fn unexpected(&self, tok: (Tok, usize, Value, &'static str), what: &str) -> String {
        let found = if tok.0 == Tok::Error {
            tok.3.to_string()
        } else {
            tok.0.name().to_string()
        };
        format!(
            "Expected {what} but found {found} at character {}",
            tok.1 + 1
        )
    }

    fn value_top(&mut self) -> Result<Value, String> {
        let t = self.token()?;
        let v = self.value(t)?;
        let end = self.token()?;
        if end.0 != Tok::End {
            return Err(self.unexpected(end, "the end"));
        }
        Ok(v)
    }

    fn value(&mut self, t: (Tok, usize, Value, &'static str)) -> Result<Value, String> {
        deep(|| self.value_inner(t))
    }

    fn value_inner(&mut self, t: (Tok, usize, Value, &'static str)) -> Result<Value, String> {
        match t.0 {
            Tok::Str | Tok::Num | Tok::Bool | Tok::Null => Ok(t.2),
            Tok::ObjBegin => {
                self.depth += 1;
                if self.depth > 1000 {
                    return Err(format!(
                        "Found too many nested data structures ({}) at character {}",
                        self.depth,
                        t.1 + 1
                    ));
                }
                let tb = self.lua.create_table().map_err(me)?;
                let mut tok = self.token()?;
                if tok.0 != Tok::ObjEnd {
                    loop {
                        if tok.0 != Tok::Str {
                            return Err(self.unexpected(tok, "object key string"));
                        }
                        let key = tok.2;
                        let colon = self.token()?;
                        if colon.0 != Tok::Colon {
                            return Err(self.unexpected(colon, "colon"));
                        }
                        let vt = self.token()?;
                        let v = self.value(vt)?;
                        tb.raw_set(key, v).map_err(me)?;
                        let sep = self.token()?;
                        if sep.0 == Tok::ObjEnd {
                            break;
                        }
                        if sep.0 != Tok::Comma {
                            return Err(self.unexpected(sep, "comma or object end"));
                        }
                        tok = self.token()?;
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(tb))
            }
            Tok::ArrBegin => {
                self.depth += 1;
                if self.depth > 1000 {
                    return Err(format!(
                        "Found too many nested data structures ({}) at character {}",
                        self.depth,
                        t.1 + 1
                    ));
                }
                let tb = self.lua.create_table().map_err(me)?;
                let mut tok = self.token()?;
                let mut i = 1;
                if tok.0 != Tok::ArrEnd {
                    loop {
                        let v = self.value(tok)?;
                        tb.raw_set(i, v).map_err(me)?;
                        i += 1;
                        let sep = self.token()?;
                        if sep.0 == Tok::ArrEnd {
                            break;
                        }
                        if sep.0 != Tok::Comma {
                            return Err(self.unexpected(sep, "comma or array end"));
                        }
                        tok = self.token()?;
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(tb))
            }
            _ => Err(self.unexpected(t, "value")),
        }
    }
}

// ---------------------------------------------------------------------------
// cmsgpack

fn mp_encode(v: &Value, out: &mut Vec<u8>, depth: usize) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => mp_int(*i, out),
        Value::Number(n) => {
            let n = *n;
            if n.is_finite() && n.floor() == n && n.abs() < 9.2e18 {
                mp_int(n as i64, out)
            } else if (n as f32) as f64 == n || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let l = b.len();
            if l < 32 {
                out.push(0xa0 | l as u8);
            } else if l <= 0xff {
                out.push(0xd9);
                out.push(l as u8);
            } else if l <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(l as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(l as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < 16 => {
            // An array: keys 1..n, no holes.
            let mut count = 0usize;
            let mut max = 0i64;
            let mut array = true;
            for p in t.clone().pairs::<Value, Value>() {
                let Ok((k, _)) = p else { continue };
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i),
                    Value::Number(n) if n >= 1.0 && n.floor() == n => max = max.max(n as i64),
                    _ => array = false,
                }
            }
            if array && max as usize == count {
                if count < 16 {
                    out.push(0x90 | count as u8);
                } else if count <= 0xffff {
                    out.push(0xdc);
                    out.extend_from_slice(&(count as u16).to_be_bytes());
                } else {
                    out.push(0xdd);
                    out.extend_from_slice(&(count as u32).to_be_bytes());
                }
                for i in 1..=count {
                    let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    mp_encode(&v, out, depth + 1);
                }
            } else {
                if count < 16 {
                    out.push(0x80 | count as u8);
                } else if count <= 0xffff {
                    out.push(0xde);
                    out.extend_from_slice(&(count as u16).to_be_bytes());
                } else {
                    out.push(0xdf);
                    out.extend_from_slice(&(count as u32).to_be_bytes());
                }
                for p in t.clone().pairs::<Value, Value>() {
                    let Ok((k, v)) = p else { continue };
                    mp_encode(&k, out, depth + 1);
                    mp_encode(&v, out, depth + 1);
                }
            }
        }
        _ => out.push(0xc0),
    }
}

fn mp_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        if i < 128 {
            out.push(i as u8);
        } else if i <= 0xff {
            out.push(0xcc);
            out.push(i as u8);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.push(0xd0);
        out.push(i as i8 as u8);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn mp_take<'b>(s: &'b [u8], pos: &mut usize, n: usize) -> Result<&'b [u8], String> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= s.len())
        .ok_or_else(|| "Missing bytes in input.".to_string())?;
    let r = &s[*pos..end];
    *pos = end;
    Ok(r)
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, &x| (a << 8) | x as u64)
}

fn mp_decode(lua: &Lua, s: &[u8], pos: &mut usize, depth: usize) -> Result<Value, String> {
    deep(|| mp_decode_inner(lua, s, pos, depth))
}

fn mp_decode_inner(lua: &Lua, s: &[u8], pos: &mut usize, depth: usize) -> Result<Value, String> {
    if depth > 1000 {
        return Err("Bad data format in input.".into());
    }
    let c = mp_take(s, pos, 1)?[0];
    let num = |n: i64| Value::Integer(n as _);
    let str_of = |lua: &Lua, s: &[u8], pos: &mut usize, n: usize| -> Result<Value, String> {
        let b = mp_take(s, pos, n)?;
        Ok(Value::String(lua.create_string(b).map_err(me)?))
    };
    Ok(match c {
        0x00..=0x7f => num(c as i64),
        0xe0..=0xff => num(c as i8 as i64),
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xcc => num(be(mp_take(s, pos, 1)?) as i64),
        0xcd => num(be(mp_take(s, pos, 2)?) as i64),
        0xce => num(be(mp_take(s, pos, 4)?) as i64),
        0xcf => {
            let v = be(mp_take(s, pos, 8)?);
            Value::Number(v as f64)
        }
        0xd0 => num(mp_take(s, pos, 1)?[0] as i8 as i64),
        0xd1 => num(be(mp_take(s, pos, 2)?) as u16 as i16 as i64),
        0xd2 => num(be(mp_take(s, pos, 4)?) as u32 as i32 as i64),
        0xd3 => Value::Number(be(mp_take(s, pos, 8)?) as i64 as f64),
        0xca => {
            let b = mp_take(s, pos, 4)?;
            Value::Number(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
        }
        0xcb => {
            let b = mp_take(s, pos, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Number(f64::from_be_bytes(a))
        }
        0xa0..=0xbf => str_of(lua, s, pos, (c & 0x1f) as usize)?,
        0xd9 | 0xc4 => {
            let n = be(mp_take(s, pos, 1)?) as usize;
            str_of(lua, s, pos, n)?
        }
        0xda | 0xc5 => {
            let n = be(mp_take(s, pos, 2)?) as usize;
            str_of(lua, s, pos, n)?
        }
        0xdb | 0xc6 => {
            let n = be(mp_take(s, pos, 4)?) as usize;
            str_of(lua, s, pos, n)?
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match c {
                0xdc => be(mp_take(s, pos, 2)?) as usize,
                0xdd => be(mp_take(s, pos, 4)?) as usize,
                _ => (c & 0x0f) as usize,
            };
            let t = lua.create_table().map_err(me)?;
            for i in 0..n {
                let v = mp_decode(lua, s, pos, depth + 1)?;
                t.raw_set(i + 1, v).map_err(me)?;
            }
            Value::Table(t)
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match c {
                0xde => be(mp_take(s, pos, 2)?) as usize,
                0xdf => be(mp_take(s, pos, 4)?) as usize,
                _ => (c & 0x0f) as usize,
            };
            let t = lua.create_table().map_err(me)?;
            for _ in 0..n {
                let k = mp_decode(lua, s, pos, depth + 1)?;
                let v = mp_decode(lua, s, pos, depth + 1)?;
                if !matches!(k, Value::Nil) {
                    t.raw_set(k, v).map_err(me)?;
                }
            }
            Value::Table(t)
        }
        _ => return Err("Bad data format in input.".into()),
    })
}

// ---------------------------------------------------------------------------
// struct

struct Item {
    kind: u8,
    size: usize,
    /// Integer signedness (lowercase options are signed).
    signed: bool,
}

struct Fmt<'a> {
    fname: &'static str,
    f: &'a [u8],
    i: usize,
    little: bool,
    maxalign: usize,
}

impl<'a> Fmt<'a> {
    fn new(f: &'a [u8], fname: &'static str) -> Fmt<'a> {
        Fmt {
            fname,
            f,
            i: 0,
            little: cfg!(target_endian = "little"),
            maxalign: 1,
        }
    }
    fn num(&mut self, default: usize) -> Result<usize, String> {
        let start = self.i;
        let mut n: usize = 0;
        while self.i < self.f.len() && self.f[self.i].is_ascii_digit() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add((self.f[self.i] - b'0') as usize))
                .ok_or("integral size out of limits")?;
            self.i += 1;
        }
        Ok(if self.i == start { default } else { n })
    }
    fn next_item(&mut self) -> Result<Option<Item>, String> {
        while self.i < self.f.len() {
            let c = self.f[self.i];
            self.i += 1;
            let int = |size: usize, signed: bool| {
                Ok(Some(Item {
                    kind: b'i',
                    size,
                    signed,
                }))
            };
            match c {
                b' ' => continue,
                b'>' => self.little = false,
                b'<' => self.little = true,
                b'=' => self.little = cfg!(target_endian = "little"),
                b'!' => self.maxalign = self.num(8)?,
                b'x' => {
                    return Ok(Some(Item {
                        kind: b'x',
                        size: 1,
                        signed: false,
                    }))
                }
                b'b' => return int(1, true),
                b'B' => return int(1, false),
                b'h' => return int(2, true),
                b'H' => return int(2, false),
                b'l' => return int(8, true),
                b'L' => return int(8, false),
                b'T' => return int(8, false),
                b'i' | b'I' => {
                    let n = self.num(4)?;
                    if n == 0 || n > 8 {
                        return Err(format!("integral size {n} is larger than limit of 8"));
                    }
                    return int(n, c == b'i');
                }
                b'f' => {
                    return Ok(Some(Item {
                        kind: b'f',
                        size: 4,
                        signed: true,
                    }))
                }
                b'd' => {
                    return Ok(Some(Item {
                        kind: b'd',
                        size: 8,
                        signed: true,
                    }))
                }
                b's' => {
                    return Ok(Some(Item {
                        kind: b's',
                        size: 0,
                        signed: false,
                    }))
                }
                b'c' => {
                    let n = self.num(1)?;
                    return Ok(Some(Item {
                        kind: b'c',
                        size: n,
                        signed: false,
                    }));
                }
                other => {
                    return Err(format!(
                        "bad argument #1 to '{}' (invalid format option '{}')",
                        self.fname, other as char
                    ))
                }
            }
        }
        Ok(None)
    }
    fn align_pad(&self, total: usize, item: &Item) -> usize {
        let mut align = match item.kind {
            b'i' | b'f' | b'd' => item.size,
            _ => 1,
        };
        if align <= 1 || self.maxalign <= 1 {
            return 0;
        }
        if align > self.maxalign {
            align = self.maxalign;
        }
        if !align.is_power_of_two() {
            return 0;
        }
        (align - (total & (align - 1))) & (align - 1)
    }
}

fn struct_pack(lua: &Lua, a: &[Value]) -> Result<MultiValue, String> {
    let fmt = match a.first() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => return Err("bad argument #1 to 'pack' (string expected)".into()),
    };
    let mut f = Fmt::new(&fmt, "pack");
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(item) = f.next_item()? {
        let pad = f.align_pad(out.len(), &item);
        out.extend(std::iter::repeat_n(0u8, pad));
        match item.kind {
            b'x' => out.push(0),
            b'i' => {
                let n = check_num(a, arg, "pack")?;
                arg += 1;
                let v = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let bytes = v.to_le_bytes();
                let mut b = bytes[..item.size].to_vec();
                if !f.little {
                    b.reverse();
                }
                out.extend_from_slice(&b);
            }
            b'f' => {
                let n = check_num(a, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = check_num(a, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if f.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = match a.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(Value::Integer(i)) => i.to_string().into_bytes(),
                    Some(Value::Number(n)) => lua_num_str(*n).into_bytes(),
                    other => {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string expected, got {})",
                            arg + 1,
                            type_name(other)
                        ))
                    }
                };
                arg += 1;
                if item.kind == b'c' {
                    let size = if item.size == 0 { s.len() } else { item.size };
                    if s.len() < size {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string too short)",
                            arg
                        ));
                    }
                    out.extend_from_slice(&s[..size]);
                } else {
                    if s.contains(&0) {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string contains zeros)",
                            arg
                        ));
                    }
                    out.extend_from_slice(&s);
                    out.push(0);
                }
            }
            _ => {}
        }
    }
    Ok(MultiValue::from_vec(vec![Value::String(
        lua.create_string(&out).map_err(me)?,
    )]))
}

fn struct_unpack(lua: &Lua, a: &[Value]) -> Result<MultiValue, String> {
    let fmt = match a.first() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => return Err("bad argument #1 to 'unpack' (string expected)".into()),
    };
    let data = match a.get(1) {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        other => {
            return Err(format!(
                "bad argument #2 to 'unpack' (string expected, got {})",
                type_name(other)
            ))
        }
    };
    let mut pos = match a.get(2) {
        None | Some(Value::Nil) => 0usize,
        _ => {
            let p = check_num(a, 2, "unpack")? as i64;
            if p < 1 {
                return Err("bad argument #3 to 'unpack' (offset must be 1 or greater)".into());
            }
            (p - 1) as usize
        }
    };
    let mut f = Fmt::new(&fmt, "unpack");
    let mut vals = Vec::new();
    let short = || "bad argument #2 to 'unpack' (data string too short)".to_string();
    while let Some(item) = f.next_item()? {
        pos += f.align_pad(pos, &item);
        match item.kind {
            b'x' => pos += 1,
            b'i' | b'f' | b'd' => {
                let end = pos.checked_add(item.size).ok_or_else(short)?;
                let b = data.get(pos..end).ok_or_else(short)?;
                let mut bytes = b.to_vec();
                if !f.little {
                    bytes.reverse();
                }
                let v =
                    match item.kind {
                        b'f' => Value::Number(f32::from_le_bytes([
                            bytes[0], bytes[1], bytes[2], bytes[3],
                        ]) as f64),
                        b'd' => {
                            let mut x = [0u8; 8];
                            x.copy_from_slice(&bytes);
                            Value::Number(f64::from_le_bytes(x))
                        }
                        _ => {
                            let mut u: u64 = 0;
                            for (i, &x) in bytes.iter().enumerate() {
                                u |= (x as u64) << (8 * i);
                            }
                            if item.signed && item.size < 8 {
                                let shift = 64 - 8 * item.size as u32;
                                Value::Number((((u << shift) as i64) >> shift) as f64)
                            } else if item.signed {
                                Value::Number(u as i64 as f64)
                            } else {
                                Value::Number(u as f64)
                            }
                        }
                    };
                vals.push(v);
                pos += item.size;
            }
            b'c' => {
                let size = if item.size == 0 {
                    // c0: size given by the previous numeric value.
                    // A negative size converts to a huge size_t in C: "too short".
                    let n = match vals.pop() {
                        Some(Value::Number(n)) => n,
                        Some(Value::Integer(n)) => n as f64,
                        _ => return Err("format 'c0' needs a previous size".into()),
                    };
                    if n < 0.0 {
                        return Err(short());
                    }
                    n as usize
                } else {
                    item.size
                };
                let end = pos.checked_add(size).ok_or_else(short)?;
                let b = data.get(pos..end).ok_or_else(short)?;
                vals.push(Value::String(lua.create_string(b).map_err(me)?));
                pos = end;
            }
            b's' => {
                let rest = data.get(pos..).ok_or_else(short)?;
                let end = rest
                    .iter()
                    .position(|&c| c == 0)
                    .ok_or("unfinished string in data")?;
                vals.push(Value::String(lua.create_string(&rest[..end]).map_err(me)?));
                pos += end + 1;
            }
            _ => {}
        }
    }
    vals.push(Value::Integer((pos + 1) as _));
    Ok(MultiValue::from_vec(vals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrand48_matches_libc_sequence() {
        // glibc: srand48(42); lrand48() twice
        srand48(42);
        assert_eq!(lrand48(), 1598855263);
        assert_eq!(lrand48(), 735945821);
    }

    #[test]
    fn tobit_wraps() {
        assert_eq!(tobit(4294967296.0 + 5.0), 5);
        assert_eq!(tobit(-1.0) as i32, -1);
        assert_eq!(tobit(2147483648.0) as i32, i32::MIN);
    }

    #[test]
    fn mp_ints() {
        let mut o = Vec::new();
        mp_int(300, &mut o);
        assert_eq!(o, [0xcd, 0x01, 0x2c]);
        o.clear();
        mp_int(-33, &mut o);
        assert_eq!(o, [0xd0, 0xdf]);
    }

    #[test]
    fn json_string_escapes() {
        let mut o = Vec::new();
        json_str(b"a/\"\n\x01", &mut o);
        assert_eq!(o, b"\"a\\/\\\"\\n\\u0001\"");
    }
}
