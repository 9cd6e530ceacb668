//! `data.calculator`: one arithmetic operation with a fixed operand.

use troupe_value::Value;

use crate::catalog::{Built, NodeType};
use crate::node::{Emitter, Node, NodeError};
use crate::params::{ParamKind, ParamSpec, Params};

const NAME: &str = "data.calculator";

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "op",
        kind: ParamKind::Choice(CalcOp::NAMES),
        default: None,
        doc: "input <op> operand: add, subtract, multiply, divide, power, modulo (the \
              result takes the sign of the operand, as in Python).",
    },
    ParamSpec {
        name: "operand",
        kind: ParamKind::Float,
        default: None,
        doc: "The right-hand number. An integer keeps integer inputs integer where the \
              result is exact.",
    },
];

/// The `data.calculator` node type.
pub(crate) const TYPE: NodeType = NodeType {
    name: NAME,
    doc: "Applies input <op> operand to numbers (int stays int where exact).",
    is_source: false,
    params: PARAMS,
    build,
};

fn build(params: &Params) -> Result<Built, NodeError> {
    let op = params.choice("op", CalcOp::NAMES, None)?;
    let op = CalcOp::from_name(op).ok_or_else(|| params.out_of_range("op", "unknown"))?;
    let operand = match params.raw("operand") {
        Some(Value::Int(i)) => Number::Int(*i),
        _ => Number::Float(params.float("operand", None)?),
    };
    if let Number::Float(f) = operand
        && !f.is_finite()
    {
        return Err(params
            .out_of_range("operand", format!("must be finite, got {f}"))
            .into());
    }
    Ok(Built::Node(Box::new(Calculator::new(op, operand))))
}

/// An arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalcOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Subtract,
    /// `a * b`.
    Multiply,
    /// `a / b`: an integer when both are integers and `b` divides `a`, else a float.
    Divide,
    /// `a` to the power `b`: a float for a negative integer exponent (`2 ** -1 == 0.5`).
    Power,
    /// `a` modulo `b`, with the sign of `b` (floored, as Python's `%`).
    Modulo,
}

impl CalcOp {
    /// Parameter spellings, in declaration order.
    pub(crate) const NAMES: &'static [&'static str] =
        &["add", "subtract", "multiply", "divide", "power", "modulo"];

    const ALL: [CalcOp; 6] = [
        CalcOp::Add,
        CalcOp::Subtract,
        CalcOp::Multiply,
        CalcOp::Divide,
        CalcOp::Power,
        CalcOp::Modulo,
    ];

    /// The operation called `name` (one of the `op` parameter's choices).
    pub fn from_name(name: &str) -> Option<CalcOp> {
        let i = CalcOp::NAMES.iter().position(|n| *n == name)?;
        CalcOp::ALL.get(i).copied()
    }
}

/// A number the calculator works on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        match n {
            Number::Int(i) => Value::Int(i),
            Number::Float(f) => Value::Float(f),
        }
    }
}

/// Applies `input <op> operand` to every number.
///
/// Takes [`Value::Int`] or [`Value::Float`]; anything else is [`NodeError::WrongInput`].
/// Two integers give an integer where the result is one (checked: a result outside `i64`
/// is an overflow error, never a wrapped value), else a float; a float on either side
/// gives a float. Division or modulo by zero, overflow, a NaN or infinite input and a
/// result that is not a real number are [`NodeError::InvalidInput`].
#[derive(Debug, Clone)]
pub struct Calculator {
    op: CalcOp,
    operand: Number,
}

impl Calculator {
    /// A node computing `input <op> operand`.
    pub fn new(op: CalcOp, operand: Number) -> Calculator {
        Calculator { op, operand }
    }

    /// `input <op> operand`, or why there is no such number.
    pub fn apply(&self, input: Number) -> Result<Number, NodeError> {
        let invalid = |reason: String| NodeError::InvalidInput { node: NAME, reason };
        match (input, self.operand) {
            (Number::Int(a), Number::Int(b)) => int_op(self.op, a, b),
            (a, b) => {
                let (a, b) = (as_f64(a), as_f64(b));
                if !a.is_finite() || !b.is_finite() {
                    return Err(invalid(format!("cannot compute with {a} and {b}")));
                }
                float_op(self.op, a, b).map(Number::Float)
            }
        }
        .map_err(|e| invalid(format!("{input:?} {:?} {:?}: {e}", self.op, self.operand)))
    }
}

fn as_f64(n: Number) -> f64 {
    match n {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    }
}

const OVERFLOW: &str = "the result overflows a 64-bit integer";

fn int_op(op: CalcOp, a: i64, b: i64) -> Result<Number, &'static str> {
    let int = |r: Option<i64>| r.map(Number::Int).ok_or(OVERFLOW);
    match op {
        CalcOp::Add => int(a.checked_add(b)),
        CalcOp::Subtract => int(a.checked_sub(b)),
        CalcOp::Multiply => int(a.checked_mul(b)),
        CalcOp::Divide if b == 0 => Err("division by zero"),
        // `checked_rem` fails only for i64::MIN % -1, whose remainder is 0.
        CalcOp::Divide if a.checked_rem(b).unwrap_or(0) == 0 => int(a.checked_div(b)),
        CalcOp::Divide => Ok(Number::Float(a as f64 / b as f64)),
        CalcOp::Modulo if b == 0 => Err("modulo by zero"),
        CalcOp::Modulo => {
            let r = a.checked_rem(b).unwrap_or(0);
            // Floored: a non-zero remainder takes the divisor's sign (|r| < |b|, no overflow).
            Ok(Number::Int(if r != 0 && (r < 0) != (b < 0) {
                r + b
            } else {
                r
            }))
        }
        CalcOp::Power => match (a, b) {
            (1, _) => Ok(Number::Int(1)),
            (-1, _) => Ok(Number::Int(if b % 2 == 0 { 1 } else { -1 })),
            (0, ..0) => Err("division by zero (zero to a negative power)"),
            (_, ..0) => Ok(Number::Float((a as f64).powf(b as f64))),
            (0, _) => Ok(Number::Int(if b == 0 { 1 } else { 0 })),
            _ => int(u32::try_from(b).ok().and_then(|e| a.checked_pow(e))),
        },
    }
}

fn float_op(op: CalcOp, a: f64, b: f64) -> Result<f64, &'static str> {
    let r = match op {
        CalcOp::Add => a + b,
        CalcOp::Subtract => a - b,
        CalcOp::Multiply => a * b,
        CalcOp::Divide if b == 0.0 => return Err("division by zero"),
        CalcOp::Divide => a / b,
        CalcOp::Modulo if b == 0.0 => return Err("modulo by zero"),
        CalcOp::Modulo => {
            let r = a % b;
            if r != 0.0 && (r < 0.0) != (b < 0.0) {
                r + b
            } else {
                r
            }
        }
        CalcOp::Power => a.powf(b),
    };
    if r.is_nan() {
        Err("the result is not a real number")
    } else if r.is_infinite() {
        Err("the result overflows a 64-bit float")
    } else {
        Ok(r)
    }
}

impl Node for Calculator {
    fn type_name(&self) -> &'static str {
        NAME
    }

    fn process(&mut self, input: Value, out: &mut Emitter) -> Result<(), NodeError> {
        let input = match input {
            Value::Int(i) => Number::Int(i),
            Value::Float(f) => Number::Float(f),
            other => {
                return Err(NodeError::WrongInput {
                    node: NAME,
                    expected: "int or float",
                    got: other.type_name(),
                });
            }
        };
        out.emit(self.apply(input)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_edge_cases() {
        assert_eq!(int_op(CalcOp::Divide, i64::MIN, -1), Err(OVERFLOW));
        assert_eq!(int_op(CalcOp::Modulo, i64::MIN, -1), Ok(Number::Int(0)));
        assert_eq!(int_op(CalcOp::Modulo, -7, 3), Ok(Number::Int(2)));
        assert_eq!(int_op(CalcOp::Modulo, 7, -3), Ok(Number::Int(-2)));
        assert_eq!(int_op(CalcOp::Power, -1, i64::MAX), Ok(Number::Int(-1)));
        assert_eq!(int_op(CalcOp::Power, 0, 0), Ok(Number::Int(1)));
        assert_eq!(int_op(CalcOp::Power, 2, -2), Ok(Number::Float(0.25)));
        assert_eq!(int_op(CalcOp::Power, 2, 1 << 40), Err(OVERFLOW));
        assert!(int_op(CalcOp::Power, 0, -1).is_err());
    }

    #[test]
    fn float_edge_cases() {
        assert_eq!(float_op(CalcOp::Modulo, -7.5, 2.0), Ok(0.5));
        assert!(float_op(CalcOp::Power, -8.0, 1.0 / 3.0).is_err());
        assert!(float_op(CalcOp::Multiply, f64::MAX, 2.0).is_err());
        let node = Calculator::new(CalcOp::Add, Number::Int(1));
        assert!(node.apply(Number::Float(f64::NAN)).is_err());
    }
}
