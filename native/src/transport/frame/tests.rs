//! Frame format tests: round trips, limits, damaged and foreign frames,
//! and the wire form of the client protocol.

use super::*;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sample {
    id: u64,
    name: String,
    data: Vec<u8>,
}

fn sample(size: usize) -> Sample {
    Sample {
        id: 42,
        name: "x".repeat(3),
        data: vec![7; size],
    }
}

#[test]
fn round_trip_of_several_frames_in_one_buffer() {
    let mut buf = BytesMut::new();
    let messages: Vec<Sample> = [0, 1, 100, 200, 20_000, 3_000_000]
        .into_iter()
        .map(sample)
        .collect();
    for message in &messages {
        encode(message, &mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap();
    }
    for message in &messages {
        let decoded: Sample = decode(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(&decoded, message);
    }
    assert!(buf.is_empty());
}

#[test]
fn client_packets_carry_keys_and_values_as_raw_bytes() {
    use distribkv_core::kv::{ClientRequest, ClientResponse, Operation, Reply, RequestBody};
    // Text in JSON (the browser's rendering) must not change the wire:
    // postcard still carries a length and the raw bytes, UTF-8 or not.
    let request = ClientRequest {
        id: 9,
        body: RequestBody::Operation {
            client: 3,
            seq: 2,
            operation: Operation::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(&[0xff, 0x00]),
            },
        },
    };
    let frame = encode_to_bytes(&request, DEFAULT_MAX_FRAME_SIZE).unwrap();
    // id, variant, client, seq, variant, key (len + byte), value (len + bytes).
    assert_eq!(&frame[2..], &[9, 1, 3, 2, 0, 1, b'k', 2, 0xff, 0x00]);
    let decoded: ClientRequest = decode(&mut BytesMut::from(&frame[..]), DEFAULT_MAX_FRAME_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!(decoded, request);
    let response = ClientResponse {
        id: 9,
        result: Ok(Reply::Done(Some(Bytes::from_static(b"v")))),
    };
    let frame = encode_to_bytes(&response, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let decoded: ClientResponse = decode(&mut BytesMut::from(&frame[..]), DEFAULT_MAX_FRAME_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!(decoded, response);
    // In JSON, UTF-8 is text and anything else a list of bytes; both read back.
    let json = serde_json::to_value(&request).unwrap();
    let put = &json["body"]["operation"]["operation"]["put"];
    assert_eq!(
        (&put["key"], &put["value"]),
        (&"k".into(), &serde_json::json!([255, 0]))
    );
    assert_eq!(
        serde_json::from_value::<ClientRequest>(json).unwrap(),
        request
    );
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["result"]["Ok"]["done"], "v");
    assert_eq!(
        serde_json::from_value::<ClientResponse>(json).unwrap(),
        response
    );
}

#[test]
fn header_is_compact() {
    let frame = encode_to_bytes(&7u8, DEFAULT_MAX_FRAME_SIZE).unwrap();
    assert_eq!(&frame[..], &[0xD1, 1, 7]);
    let frame = encode_to_bytes(&sample(200), DEFAULT_MAX_FRAME_SIZE).unwrap();
    assert_eq!(frame[0], 0xD1);
    assert_eq!(frame.len(), 1 + 2 + (1 + 1 + 3 + 2 + 200));
}

#[test]
fn truncated_frames_wait_for_more_bytes() {
    let frame = encode_to_bytes(&sample(300), DEFAULT_MAX_FRAME_SIZE).unwrap();
    for cut in 0..frame.len() {
        let mut buf = BytesMut::from(&frame[..cut]);
        let decoded: Option<Sample> = decode(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert!(decoded.is_none(), "cut at {cut}");
        assert_eq!(buf.len(), cut, "nothing consumed at cut {cut}");
    }
}

#[test]
fn wrong_version_is_reported_and_skipped() {
    let mut frame =
        BytesMut::from(&encode_to_bytes(&sample(5), DEFAULT_MAX_FRAME_SIZE).unwrap()[..]);
    frame[0] = FRAME_MAGIC | 2;
    encode(&sample(6), &mut frame, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let error = decode::<Sample>(&mut frame, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert!(matches!(error, FrameError::UnsupportedVersion { found: 2 }));
    assert!(!error.is_fatal());
    let next: Sample = decode(&mut frame, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
    assert_eq!(next, sample(6));
}

#[test]
fn oversize_is_refused_on_both_sides() {
    let mut out = BytesMut::from(&b"kept"[..]);
    let error = encode(&sample(2000), &mut out, 1000).unwrap_err();
    assert!(matches!(error, FrameError::TooLarge { .. }));
    assert_eq!(&out[..], b"kept");

    // Only the header has arrived: the length alone is enough to refuse.
    let frame = encode_to_bytes(&sample(2000), DEFAULT_MAX_FRAME_SIZE).unwrap();
    let mut buf = BytesMut::from(&frame[..4]);
    let error = decode::<Sample>(&mut buf, 1000).unwrap_err();
    assert!(matches!(error, FrameError::TooLarge { length, max: 1000 } if length > 2000));
    assert!(error.is_fatal());

    let mut buf = BytesMut::from(&[0xD1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F][..]);
    assert!(matches!(
        decode::<Sample>(&mut buf, DEFAULT_MAX_FRAME_SIZE),
        Err(FrameError::TooLarge { .. })
    ));
    let mut buf = BytesMut::from(&[0xD1, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert!(matches!(
        decode::<Sample>(&mut buf, DEFAULT_MAX_FRAME_SIZE),
        Err(FrameError::MalformedLength)
    ));
}

#[test]
fn garbage_is_not_a_frame() {
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    let error = decode::<Sample>(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert!(matches!(error, FrameError::NotAFrame(b'G')));
    assert!(error.is_fatal());
}

#[test]
fn undecodable_payload_is_skipped() {
    let mut buf = BytesMut::new();
    encode(&vec![0xFFu8; 3], &mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap();
    encode(&sample(1), &mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap();
    // A Vec<u8> of three 0xFF: the Sample's varint id runs off the end.
    let error = decode::<Sample>(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert!(matches!(error, FrameError::Undecodable(_)));
    assert!(!error.is_fatal());
    assert_eq!(
        decode::<Sample>(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap(),
        Some(sample(1))
    );
}

#[tokio::test]
async fn reader_skips_bad_frames_and_stops_at_garbage() {
    let mut bytes = BytesMut::new();
    encode(&sample(1), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    encode(&"not a sample", &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    let wrong_version_at = bytes.len();
    encode(&sample(2), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    bytes[wrong_version_at] = FRAME_MAGIC | 9;
    encode(&sample(3), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    bytes.extend_from_slice(b"garbage");
    let counters = Arc::new(FrameCounters::default());
    let mut reader = FrameReader::new(&bytes[..], DEFAULT_MAX_FRAME_SIZE, counters.clone(), "test");
    assert_eq!(
        reader.next_message::<Sample>().await.unwrap(),
        Some(sample(1))
    );
    assert_eq!(
        reader.next_message::<Sample>().await.unwrap(),
        Some(sample(3))
    );
    let error = reader.next_message::<Sample>().await.unwrap_err();
    assert!(matches!(error, FrameError::NotAFrame(b'g')));
    assert_eq!(counters.decoded.load(Ordering::Relaxed), 2);
    assert_eq!(counters.undecodable.load(Ordering::Relaxed), 1);
    assert_eq!(counters.wrong_version.load(Ordering::Relaxed), 1);
    assert_eq!(counters.streams_closed.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn reader_reports_a_stream_cut_inside_a_frame() {
    let frame = encode_to_bytes(&sample(50), DEFAULT_MAX_FRAME_SIZE).unwrap();
    let counters = Arc::new(FrameCounters::default());
    let mut reader = FrameReader::new(&frame[..20], DEFAULT_MAX_FRAME_SIZE, counters, "test");
    assert!(matches!(
        reader.next_message::<Sample>().await,
        Err(FrameError::Truncated(20))
    ));
    let mut empty = FrameReader::new(
        &b""[..],
        DEFAULT_MAX_FRAME_SIZE,
        Arc::new(FrameCounters::default()),
        "test",
    );
    assert!(empty.next_message::<Sample>().await.unwrap().is_none());
}
