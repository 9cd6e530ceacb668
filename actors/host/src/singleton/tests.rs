use troupe_runtime::{Call, Registry};
use troupe_value::{CallError, Value};

use super::{SingletonError, SingletonKinds, SingletonSpec};

/// The singleton `store` of kind `kind`.
fn store(kind: &str, params: &[(&str, Value)]) -> SingletonSpec {
    SingletonSpec {
        name: "store".into(),
        kind: kind.into(),
        params: params
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect(),
    }
}

async fn call(registry: &Registry, method: &str, args: Vec<Value>) -> Result<Value, CallError> {
    let kv = registry.caller("store").expect("registered");
    kv.call(Call::new(method.to_owned(), args)).await
}

#[test]
fn kv_stores_counts_and_refuses_past_its_capacity() {
    actix::System::new().block_on(async {
        let registry = Registry::new();
        SingletonKinds::builtin()
            .start_all([&store("kv", &[("capacity", Value::Int(2))])], &registry)
            .expect("starts");
        assert_eq!(
            call(&registry, "put", vec!["a".into(), 1i64.into()]).await,
            Ok(Value::Null)
        );
        assert_eq!(
            call(&registry, "incr", vec!["a".into(), 4i64.into()]).await,
            Ok(Value::Int(5))
        );
        assert_eq!(
            call(&registry, "incr", vec!["n".into()]).await,
            Ok(Value::Int(1))
        );
        assert_eq!(
            call(&registry, "get", vec!["a".into()]).await,
            Ok(Value::Int(5))
        );
        assert_eq!(
            call(&registry, "get", vec!["zz".into(), "dflt".into()]).await,
            Ok(Value::from("dflt"))
        );
        assert_eq!(call(&registry, "len", vec![]).await, Ok(Value::Int(2)));
        // A third key does not fit; replacing one does.
        assert!(matches!(
            call(&registry, "put", vec!["c".into(), 3i64.into()]).await,
            Err(CallError::BadArguments { .. })
        ));
        assert_eq!(
            call(&registry, "put", vec!["a".into(), "x".into()]).await,
            Ok(Value::Null)
        );
        assert!(matches!(
            call(&registry, "incr", vec!["a".into()]).await,
            Err(CallError::BadArguments { .. })
        ));
        assert_eq!(
            call(&registry, "delete", vec!["a".into()]).await,
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call(&registry, "keys", vec![]).await,
            Ok(Value::from(vec!["n"]))
        );
        assert!(matches!(
            call(&registry, "nope", vec![]).await,
            Err(CallError::UnknownMethod { .. })
        ));
    });
}

#[test]
fn unknown_kinds_and_bad_parameters_are_typed_errors() {
    actix::System::new().block_on(async {
        let registry = Registry::new();
        let unknown = store("redis", &[]);
        match SingletonKinds::builtin().start_all([&unknown], &registry) {
            Err(SingletonError::UnknownKind { name, kind, known }) => {
                assert_eq!(
                    (name.as_str(), kind.as_str(), known.as_str()),
                    ("store", "redis", "kv")
                );
            }
            other => panic!("expected UnknownKind, got {other:?}"),
        }
        let bad = store("kv", &[("capacity", Value::from("lots"))]);
        assert!(matches!(
            SingletonKinds::builtin().start_all([&bad], &registry),
            Err(SingletonError::BadParam { .. })
        ));
        // A kind the host program brings.
        let custom = store("echo", &[]);
        SingletonKinds::builtin()
            .register("echo", |m| {
                Ok(troupe_runtime::ActorBuilder::new(&m.name)
                    .spawn(super::KeyValue::default())
                    .caller())
            })
            .start_all([&custom], &registry)
            .expect("custom kind starts");
        assert_eq!(call(&registry, "len", vec![]).await, Ok(Value::Int(0)));
    });
}
