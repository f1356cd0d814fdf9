//! `Rill` (connect, producers, consumers) and topic administration.

use jni::objects::{
    JByteArray, JClass, JIntArray, JLongArray, JObject, JObjectArray, JString, JValue,
};
use jni::sys::{jint, jlong, jobjectArray, jstring};
use jni::JNIEnv;
use rill::RillError;

use crate::error::{guard, null, Failure, Result};
use crate::handle::{self, Object};
use crate::runtime::{block, java};

/// A Java string argument (the Java classes never pass null where one is
/// required).
pub fn string(env: &mut JNIEnv<'_>, s: &JString<'_>) -> Result<String> {
    if s.is_null() {
        return Err(Failure::Arg("a required string was null".into()));
    }
    Ok(env.get_string(s)?.into())
}

fn strings(env: &mut JNIEnv<'_>, a: &JObjectArray<'_>) -> Result<Vec<String>> {
    if a.is_null() {
        return Ok(Vec::new());
    }
    let len = env.get_array_length(a)?;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for i in 0..len {
        let s = JString::from(env.get_object_array_element(a, i)?);
        out.push(string(env, &s)?);
        env.delete_local_ref(s)?;
    }
    Ok(out)
}

/// A partition number from Java.
pub fn partition(p: jint) -> Result<u32> {
    u32::try_from(p).map_err(|_| RillError::Config(format!("partition {p} is negative")).into())
}

/// `Native.connect(addr)`: null means `RILL_ADDR`, else the profile
/// `rill cluster start` wrote, else 127.0.0.1:9092.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_connect<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    addr: JString<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let addr = if addr.is_null() {
            rill::discover_addr()
        } else {
            string(env, &addr)?
        };
        let rill = block(rill::Rill::connect_to(&addr))??;
        Ok(handle::new(Object::Rill(rill)))
    })
}

/// `Native.addr(rill)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_addr<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
) -> jstring {
    guard(&mut env, null(), |env| {
        let addr = handle::rill(rill)?.addr().to_owned();
        Ok(env.new_string(addr)?.into_raw())
    })
}

/// `Native.topicProducer(rill, topic, settings)`: settings null for the
/// defaults.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_topicProducer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
    topic: JString<'l>,
    settings: JLongArray<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let rill = handle::rill(rill)?;
        let topic = string(env, &topic)?;
        let config = crate::config::read(env, &settings)?;
        let producer = block(rill.topic_producer_with_config(&topic, config))??;
        Ok(handle::new(Object::Producer(producer)))
    })
}

/// `Native.partitionConsumer(rill, topic, partition)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_partitionConsumer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
    topic: JString<'l>,
    partition: jint,
) -> jlong {
    guard(&mut env, 0, |env| {
        let rill = handle::rill(rill)?;
        let topic = string(env, &topic)?;
        let partition = self::partition(partition)?;
        let consumer = block(rill.partition_consumer(&topic, partition))??;
        Ok(handle::new(Object::Consumer(consumer)))
    })
}

/// `Native.consumer(rill, topic, partitions, offsetKind, offsetValue)`:
/// every partition (partitions null) or those given, one stream.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_consumer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
    topic: JString<'l>,
    partitions: JIntArray<'l>,
    offset_kind: jint,
    offset_value: jlong,
) -> jlong {
    guard(&mut env, 0, |env| {
        let rill = handle::rill(rill)?;
        let topic = string(env, &topic)?;
        let wanted = if partitions.is_null() {
            None
        } else {
            let len = env.get_array_length(&partitions)?;
            let mut buf = vec![0; usize::try_from(len).unwrap_or(0)];
            env.get_int_array_region(&partitions, 0, &mut buf)?;
            Some(
                buf.into_iter()
                    .map(partition)
                    .collect::<Result<Vec<u32>>>()?,
            )
        };
        let offset = crate::consumer::offset(offset_kind, offset_value)?;
        let stream = block(rill.consumer(
            &topic,
            wanted.as_deref(),
            offset,
            rill::ConsumerConfig::default(),
        ))??;
        Ok(crate::consumer::new_stream(crate::consumer::Source::Many(
            stream,
        )))
    })
}

/// `Native.createTopic(rill, topic, partitions, replication, keys, values)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_createTopic<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
    topic: JString<'l>,
    partitions: jint,
    replication: jint,
    keys: JObjectArray<'l>,
    values: JObjectArray<'l>,
) {
    guard(&mut env, (), |env| {
        let rill = handle::rill(rill)?;
        let topic = string(env, &topic)?;
        let replication = i16::try_from(replication)
            .map_err(|_| RillError::Config(format!("replication {replication} is out of range")))?;
        let (keys, values) = (strings(env, &keys)?, strings(env, &values)?);
        let pairs: Vec<(&str, &str)> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let admin = rill.admin();
        block(admin.create_topic(&topic, partitions, replication, &pairs))??;
        Ok(())
    })
}

/// `Native.deleteTopic(rill, topic)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_deleteTopic<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
    topic: JString<'l>,
) {
    guard(&mut env, (), |env| {
        let rill = handle::rill(rill)?;
        let topic = string(env, &topic)?;
        let admin = rill.admin();
        block(admin.delete_topic(&topic))??;
        Ok(())
    })
}

/// `Native.listTopics(rill)`: `TopicInfo[]`, sorted by name.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_listTopics<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    rill: jlong,
) -> jobjectArray {
    guard(&mut env, null(), |env| {
        let rill = handle::rill(rill)?;
        let admin = rill.admin();
        let topics = block(admin.list_topics())??;
        let class: &JClass<'_> = java()?.topic_info_class.as_obj().into();
        let len =
            i32::try_from(topics.len()).map_err(|_| Failure::Arg("too many topics".into()))?;
        let array = env.new_object_array(len, class, JObject::null())?;
        for (i, t) in (0..).zip(&topics) {
            let name = env.new_string(&t.name)?;
            let parts = i32::try_from(t.partitions).unwrap_or(i32::MAX);
            let info = env.new_object(
                class,
                "(Ljava/lang/String;I)V",
                &[JValue::Object(&name), JValue::Int(parts)],
            )?;
            env.set_object_array_element(&array, i, &info)?;
            env.delete_local_ref(info)?;
            env.delete_local_ref(name)?;
        }
        Ok(array.into_raw())
    })
}

/// `Native.murmur2(bytes)`: the Kafka Java client's murmur2.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_murmur2<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    data: JByteArray<'l>,
) -> jint {
    guard(&mut env, 0, |env| {
        let data = env.convert_byte_array(&data)?;
        Ok(rill::producer::murmur2(&data))
    })
}

/// `Native.partitionForKey(key, partitions)`: where the Kafka Java
/// client's default partitioner puts `key`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_partitionForKey<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    key: JByteArray<'l>,
    partitions: jint,
) -> jint {
    guard(&mut env, 0, |env| {
        let key = env.convert_byte_array(&key)?;
        let count = u32::try_from(partitions)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| RillError::Config(format!("{partitions} partitions")))?;
        Ok(rill::producer::partition_for_key(&key, count) as jint)
    })
}
