//! `vaultKey` given as a JS value rather than text: written out as JSON for the key parser.
//!
//! By hand rather than through `serde_json::Value` and serde-wasm-bindgen, by the same rules:
//! that route added 29 KB to the gzipped wasm (the Value conversion and printing, and core's
//! float formatting, which serde-wasm-bindgen's error messages pull in).

use wasm_bindgen::prelude::*;

/// Deeper than serde_json's nesting limit (128), so cutting a `vaultKey` off here changes no
/// verdict; it only stops a cyclic object from overflowing the stack.
const MAX_KEY_DEPTH: u32 = 200;

/// `vaultKey` as text: a string as given, anything else as JSON (see [`write_json`]); `None`
/// for what is not JSON-like.
pub fn key_text(v: &JsValue) -> Option<String> {
    if let Some(text) = v.as_string() {
        return Some(text);
    }
    let mut json = Vec::new();
    write_json(v, 0, &mut json)?;
    String::from_utf8(json).ok()
}

/// Writes a JS value as JSON: `null` and `undefined` as `null`; booleans; numbers (a safe
/// integer as an integer, any other finite number as a float, `NaN` and infinities as `null`);
/// BigInts within 64 bits; strings; arrays (holes as `null`); `Map`s with string keys and other
/// non-iterable objects by their own enumerable members. `None` for anything else (functions,
/// symbols, `Set`s, bytes, larger BigInts, …).
fn write_json(v: &JsValue, depth: u32, out: &mut Vec<u8>) -> Option<()> {
    if depth > MAX_KEY_DEPTH || v.loose_eq(&JsValue::NULL) {
        out.extend_from_slice(b"null");
    } else if let Some(b) = v.as_bool() {
        out.extend_from_slice(if b { b"true" } else { b"false" });
    } else if v.is_bigint() {
        let text = match i64::try_from(v.clone()) {
            Ok(i) => i.to_string(),
            Err(v) => u64::try_from(v).ok()?.to_string(),
        };
        out.extend_from_slice(text.as_bytes());
    } else if let Some(n) = v.as_f64() {
        if js_sys::Number::is_safe_integer(v) {
            out.extend_from_slice((n as i64).to_string().as_bytes());
        } else if n.is_finite() {
            // JavaScript's own shortest form; `.0` keeps a large whole number a float.
            let text: String = js_sys::Number::to_string_with_radix(v.unchecked_ref(), 10)
                .ok()?
                .into();
            out.extend_from_slice(text.as_bytes());
            if !text.contains(['.', 'e']) {
                out.extend_from_slice(b".0");
            }
        } else {
            out.extend_from_slice(b"null");
        }
    } else if let Some(s) = v.as_string() {
        serde_json::to_writer(&mut *out, &s).ok()?;
    } else if let Some(array) = v.dyn_ref::<js_sys::Array>() {
        out.push(b'[');
        for (i, item) in array.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(&item, depth + 1, out)?;
        }
        out.push(b']');
    } else if v.is_instance_of::<js_sys::Uint8Array>() || v.is_instance_of::<js_sys::ArrayBuffer>()
    {
        return None;
    } else if v.is_object()
        && (!js_sys::Symbol::iterator().js_in(v) || v.is_instance_of::<js_sys::Map>())
    {
        let entries = match js_sys::try_iter(v).ok()? {
            Some(iter) => iter.collect::<Result<Vec<_>, _>>().ok()?,
            None => js_sys::Object::entries(v.unchecked_ref()).to_vec(),
        };
        out.push(b'{');
        for (i, entry) in entries.iter().enumerate() {
            let entry: &js_sys::Array = entry.unchecked_ref();
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &entry.get(0).as_string()?).ok()?;
            out.push(b':');
            write_json(&entry.get(1), depth + 1, out)?;
        }
        out.push(b'}');
    } else {
        return None;
    }
    Some(())
}
