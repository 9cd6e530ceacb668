//! A call's arguments are released in the child when the call returns, not when the next
//! frame comes (the CUDA review's H2): a pool slot, or a CUDA export, lent for a call comes
//! back to its owner as soon as the call is over. Shown on CPU: a method keeps a weak
//! reference to its argument and looks at it 1 s after returning, with no frame from the
//! host meanwhile. For `def` and `async def` methods, and a generator's stream.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{start_plugin, venv};
use troupe_runtime::Call;
use troupe_shm::pool::Pool;
use troupe_value::{Array, Buffer, DType, Value};

/// An array in a slot of the host's pool: it reaches Python as a view of that slot.
fn pooled_array() -> Value {
    let pooled = Pool::global()
        .copy_from_slice(&vec![1u8; 256 * 1024])
        .unwrap();
    Value::Array(Array::new(DType::U8, vec![256 * 1024], Buffer::from(pooled)).unwrap())
}

#[test]
fn the_last_calls_arguments_do_not_outlive_it() {
    actix::System::new().block_on(async {
        let venv = actix_rt::task::spawn_blocking(|| venv(&["numpy>=2,<3"]))
            .await
            .unwrap();
        let ext = start_plugin("linger", "linger", venv, Duration::from_secs(60)).await;
        for method in ["take", "take_async", "take_streamed"] {
            let call = Call::new(method, vec![pooled_array()]);
            if method == "take_streamed" {
                let mut stream = ext.call_stream(call, None, 4);
                while let Some(item) = stream.next().await {
                    item.unwrap();
                }
            } else {
                ext.call_with(call, None).await.unwrap();
            }
            // No frame goes to the child while it looks.
            actix_rt::time::sleep(Duration::from_millis(1500)).await;
            let alive = ext.call("report", vec![]).await.unwrap();
            assert_eq!(
                alive,
                Value::Bool(false),
                "{method}: the argument was still alive 1 s after the call returned"
            );
        }
        ext.stop().await;
    });
}
