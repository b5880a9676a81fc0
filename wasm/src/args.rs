//! Reading arguments that come from JavaScript: every value is checked for
//! its type and range here, so a bad argument becomes a JS `Error` with a
//! message that names the argument, never a panic or a silent coercion
//! (wasm-bindgen's own `u32` parameters would turn `"abc"` into 0).

use distribkv_core::check::Budget;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsError, JsValue};

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A short rendering of a JS value for error messages: `"abc"`, `3.5`,
/// `1e+300`, `undefined`, `an object`, `an array`.
pub fn describe(value: &JsValue) -> String {
    if value.is_undefined() {
        String::from("undefined")
    } else if value.is_null() {
        String::from("null")
    } else if let Some(text) = value.as_string() {
        let mut shown: String = text.chars().take(40).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        format!("{shown:?}")
    } else if let Some(number) = value.as_f64() {
        // As JS writes it (`1e+300`, `Infinity`), not 301 digits or `inf`.
        String::from(
            js_sys::Number::from(number)
                .to_string_with_radix(10)
                .unwrap_or_default(),
        )
    } else if let Some(flag) = value.as_bool() {
        format!("{flag}")
    } else if value.is_bigint() {
        String::from(
            &js_sys::BigInt::from(value.clone())
                .to_string(10)
                .unwrap_or_default(),
        ) + "n"
    } else if Array::is_array(value) {
        String::from("an array")
    } else if value.is_function() {
        String::from("a function")
    } else {
        String::from("an object")
    }
}

/// An error naming what was wrong.
pub fn error(message: impl AsRef<str>) -> JsError {
    JsError::new(message.as_ref())
}

/// Whether a value stands for "not given" (`undefined` or `null`).
pub fn is_absent(value: &JsValue) -> bool {
    value.is_undefined() || value.is_null()
}

/// A non-negative integer up to 2^53 - 1 (a JS number with no fraction, or
/// a BigInt in that range). Counts, ids, times and sizes stay in the range
/// where JS numbers are exact, so no arithmetic on them can overflow.
pub fn integer(value: &JsValue, what: &str) -> Result<u64, JsError> {
    let number = integer_u64(value, what)?;
    if number as f64 > MAX_SAFE_INTEGER {
        return Err(error(format!(
            "{what} must be at most 2^53 - 1, not {}",
            describe(value)
        )));
    }
    Ok(number)
}

/// A non-negative integer of up to 64 bits: a JS number with no fraction
/// (exact up to 2^53 - 1), or a BigInt for the whole range (seeds).
pub fn integer_u64(value: &JsValue, what: &str) -> Result<u64, JsError> {
    if let Some(number) = value.as_f64() {
        if number.is_finite() && number >= 0.0 && number.fract() == 0.0 {
            if number <= MAX_SAFE_INTEGER {
                return Ok(number as u64);
            }
            return Err(error(format!(
                "{what} must be at most 2^53 - 1 as a number (a BigInt can be larger), not {number}"
            )));
        }
        return Err(error(format!(
            "{what} must be a non-negative integer, not {}",
            describe(value)
        )));
    }
    if value.is_bigint() {
        return u64::try_from(value.clone()).map_err(|_| {
            error(format!(
                "{what} must be a non-negative integer of at most 64 bits, not {}",
                describe(value)
            ))
        });
    }
    Err(error(format!(
        "{what} must be a non-negative integer, not {}",
        describe(value)
    )))
}

/// Like [`integer`], with `undefined` and `null` meaning "not given".
pub fn optional_integer(value: &JsValue, what: &str) -> Result<Option<u64>, JsError> {
    if is_absent(value) {
        Ok(None)
    } else {
        integer(value, what).map(Some)
    }
}

/// A point or span of virtual time in milliseconds: a non-negative number
/// up to 2^53 - 1 (a fraction is dropped: the simulator counts whole
/// milliseconds) or a BigInt in that range. A larger value is refused, not
/// clamped.
pub fn millis(value: &JsValue, what: &str) -> Result<u64, JsError> {
    if let Some(number) = value.as_f64() {
        if number.is_finite() && number >= 0.0 {
            let whole = number.floor();
            if whole > MAX_SAFE_INTEGER {
                return Err(error(format!(
                    "{what} must be at most 2^53 - 1, not {}",
                    describe(value)
                )));
            }
            return Ok(whole as u64);
        }
        return Err(error(format!(
            "{what} must be a non-negative number of milliseconds, not {}",
            describe(value)
        )));
    }
    if value.is_bigint() {
        return integer(value, what);
    }
    Err(error(format!(
        "{what} must be a non-negative number of milliseconds, not {}",
        describe(value)
    )))
}

/// The most virtual time one `runFor` or `runUntil` call may cover (ms,
/// about 27.8 hours). A call processes every event on the way before it
/// returns, and the page (one thread) is frozen meanwhile: a slip such as
/// `runFor(1e12)` (31 years) would never return. Any run a test or a
/// lesson asks for, up to a day of virtual time, is still one call (the
/// contract's `runFor(ms)` has no bound); measured in Node (web/README.md,
/// "Virtual time per call"), a default cluster runs 0.3 to 6 million
/// virtual ms per wall second, so such a call takes seconds to a few
/// minutes. A longer run is several calls.
pub const MAX_RUN_MS: u64 = 100_000_000;

/// `runFor(ms)`'s span: [`millis`] up to [`MAX_RUN_MS`].
pub fn run_span(value: &JsValue, what: &str) -> Result<u64, JsError> {
    let ms = millis(value, what)?;
    if ms > MAX_RUN_MS {
        return Err(error(format!(
            "{what} must be at most {MAX_RUN_MS} ms per call (call again to run longer), not {}",
            describe(value)
        )));
    }
    Ok(ms)
}

/// `runUntil(t)`'s target: [`millis`], at most [`MAX_RUN_MS`] after `now`
/// (an earlier one is returned as it is: the caller does nothing then).
pub fn run_target(value: &JsValue, what: &str, now: u64) -> Result<u64, JsError> {
    let t = millis(value, what)?;
    if t.saturating_sub(now) > MAX_RUN_MS {
        return Err(error(format!(
            "{what} must be at most {MAX_RUN_MS} ms after now() ({now}) per call (call again to run longer), not {}",
            describe(value)
        )));
    }
    Ok(t)
}

/// Any finite number (range checks are the simulator's).
pub fn number(value: &JsValue, what: &str) -> Result<f64, JsError> {
    match value.as_f64() {
        Some(number) if number.is_finite() => Ok(number),
        _ => Err(error(format!(
            "{what} must be a finite number, not {}",
            describe(value)
        ))),
    }
}

/// A boolean.
pub fn boolean(value: &JsValue, what: &str) -> Result<bool, JsError> {
    value.as_bool().ok_or_else(|| {
        error(format!(
            "{what} must be true or false, not {}",
            describe(value)
        ))
    })
}

/// A string.
pub fn string(value: &JsValue, what: &str) -> Result<String, JsError> {
    value
        .as_string()
        .ok_or_else(|| error(format!("{what} must be a string, not {}", describe(value))))
}

/// A JS array, as a vector of its elements.
pub fn array(value: &JsValue, what: &str) -> Result<Vec<JsValue>, JsError> {
    if Array::is_array(value) {
        Ok(Array::from(value).iter().collect())
    } else {
        Err(error(format!(
            "{what} must be an array, not {}",
            describe(value)
        )))
    }
}

/// `[min, max]` of non-negative integers with `min <= max`.
pub fn range(value: &JsValue, what: &str) -> Result<(u64, u64), JsError> {
    let items = array(value, what)?;
    if items.len() != 2 {
        return Err(error(format!(
            "{what} must be [min, max], not an array of {} elements",
            items.len()
        )));
    }
    let min = integer(&items[0], &format!("{what}[0]"))?;
    let max = integer(&items[1], &format!("{what}[1]"))?;
    if min > max {
        return Err(error(format!(
            "{what} must have min <= max, not [{min}, {max}]"
        )));
    }
    Ok((min, max))
}

/// The longest one-way network latency (ms, about 11.6 days). A packet's
/// delivery time is its send time plus the latency, and `state()` renders
/// it as a JS number: a latency near 2^53 would make every later
/// `state()` fail to render, so it is refused up front.
pub const MAX_LATENCY_MS: u64 = 1_000_000_000;

/// A latency range: [`range`] with `max` at most [`MAX_LATENCY_MS`].
pub fn latency_range(value: &JsValue, what: &str) -> Result<(u64, u64), JsError> {
    let (min, max) = range(value, what)?;
    check_latency(max, what)?;
    Ok((min, max))
}

/// Refuses a latency above [`MAX_LATENCY_MS`]; `what` names it.
pub fn check_latency(ms: u64, what: &str) -> Result<(), JsError> {
    if ms > MAX_LATENCY_MS {
        return Err(error(format!(
            "{what} must be at most {MAX_LATENCY_MS} ms, not {ms}"
        )));
    }
    Ok(())
}

/// One of this module's readers: a JS value and what it is, for the error.
pub type Reader<T> = fn(&JsValue, &str) -> Result<T, JsError>;

/// The fields of an options object (`{ nodes: 5, seed: 42 }`), checked
/// against the names a call knows: a misspelt field is an error rather
/// than silently ignored.
pub struct Fields {
    object: Option<Object>,
    what: &'static str,
}

impl Fields {
    /// Reads `value` as an options object; `undefined` and `null` mean `{}`.
    pub fn new(value: &JsValue, what: &'static str, known: &[&str]) -> Result<Fields, JsError> {
        if is_absent(value) {
            return Ok(Fields { object: None, what });
        }
        if !value.is_object() || Array::is_array(value) || value.is_function() {
            return Err(error(format!(
                "{what} must be an object, not {}",
                describe(value)
            )));
        }
        let object = Object::from(value.clone());
        for key in Object::keys(&object).iter() {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                return Err(error(format!(
                    "{what} has an unknown field {key:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(Fields {
            object: Some(object),
            what,
        })
    }

    /// The field `name`, unless absent (`undefined` or `null`).
    pub fn get(&self, name: &str) -> Option<JsValue> {
        let object = self.object.as_ref()?;
        let value = Reflect::get(object, &JsValue::from_str(name)).ok()?;
        (!is_absent(&value)).then_some(value)
    }

    /// `what.name`, for messages.
    pub fn name(&self, name: &str) -> String {
        format!("{}.{name}", self.what)
    }

    /// The field `name` read with `read` (one of this module's readers, which
    /// names `what.name` in its error), or `None` if absent.
    pub fn read<T>(&self, name: &str, read: Reader<T>) -> Result<Option<T>, JsError> {
        self.get(name)
            .map(|v| read(&v, &self.name(name)))
            .transpose()
    }

    /// Sets `target` from the field `name` read with `read`, if present.
    pub fn set<T>(&self, name: &str, read: Reader<T>, target: &mut T) -> Result<(), JsError> {
        if let Some(value) = self.read(name, read)? {
            *target = value;
        }
        Ok(())
    }
}

/// `history(opts)`'s `opts.from`: the first operation id wanted (1 when absent).
pub fn history_from(opts: &JsValue) -> Result<u64, JsError> {
    let fields = Fields::new(opts, "history options", &["from"])?;
    Ok(fields.read("from", integer)?.unwrap_or(1).max(1))
}

/// The step budget of `check(opts)`: `opts.maxSteps`, or the checker's
/// default.
pub fn check_budget(opts: &JsValue) -> Result<Budget, JsError> {
    let fields = Fields::new(opts, "check options", &["maxSteps"])?;
    Ok(match fields.read("maxSteps", integer)? {
        Some(steps) => Budget::steps(steps),
        None => Budget::DEFAULT,
    })
}
