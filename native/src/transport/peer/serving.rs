//! Request streams: requests in, each delivered with a [`ReplyHandle`];
//! answers out, many per stream write, in the order they are given.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::inbound::close_bad_stream;
use super::{Inner, bump};
use crate::tls::Role;
use crate::transport::frame::{self, FrameReader};
use crate::transport::{Answer, error_code};

/// One client request and the handle to answer it.
#[derive(Debug)]
pub struct ClientRequest<Req, Resp> {
    /// The request.
    pub request: Req,
    /// Sends the answer back on the stream the request came from.
    pub reply: ReplyHandle<Resp>,
}

/// Answers one client request, on the stream it arrived on. Dropping the
/// handle without answering tells the client [`Answer::NotAnswered`].
pub struct ReplyHandle<Resp> {
    request_id: u64,
    role: Role,
    remote: SocketAddr,
    answers: Option<mpsc::UnboundedSender<(u64, Answer<Resp>)>>,
    /// Released when answered: bounds the requests in flight per stream.
    _in_flight: OwnedSemaphorePermit,
}

impl<Resp> fmt::Debug for ReplyHandle<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyHandle")
            .field("request_id", &self.request_id)
            .field("role", &self.role)
            .field("remote", &self.remote)
            .finish()
    }
}

impl<Resp> ReplyHandle<Resp> {
    /// Sends `response`. Returns false when the client is gone.
    pub fn send(mut self, response: Resp) -> bool {
        match self.answers.take() {
            Some(answers) => answers
                .send((self.request_id, Answer::Response(response)))
                .is_ok(),
            None => false,
        }
    }

    /// The request id chosen by the client (unique per stream).
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// Whether the request came from a client or from a node.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The UDP address the request came from.
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }
}

impl<Resp> Drop for ReplyHandle<Resp> {
    fn drop(&mut self) {
        if let Some(answers) = self.answers.take() {
            let _ = answers.send((self.request_id, Answer::NotAnswered));
        }
    }
}

/// Serves one request stream: requests in, answers out (in the order they
/// are given, not necessarily the order of the requests).
pub(super) async fn serve_request_stream<M, Req, Resp>(
    inner: Arc<Inner<M>>,
    role: Role,
    remote: SocketAddr,
    send: SendStream,
    receive: RecvStream,
    request_sender: mpsc::Sender<ClientRequest<Req, Resp>>,
) where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let settings = &inner.settings;
    let (answers, answer_queue) = mpsc::unbounded_channel();
    let reset = Arc::new(Notify::new());
    let writer = tokio::spawn(write_answers(
        send,
        answer_queue,
        reset.clone(),
        settings.max_frame_size,
        settings.max_batch_bytes,
    ));
    let in_flight = Arc::new(Semaphore::new(settings.client_in_flight_limit.max(1)));
    let mut reader = FrameReader::new(
        receive,
        settings.max_frame_size,
        inner.frames.clone(),
        format!("request stream from {remote}"),
    );
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (request_id, request) = match reader.next_tagged::<Req>().await {
            Ok(Some(tagged)) => tagged,
            Ok(None) => break,
            Err(error) => {
                close_bad_stream(&mut reader, &error);
                reset.notify_one();
                break;
            }
        };
        let Ok(request) = request else {
            let _ = answers.send((request_id, Answer::UndecodableRequest));
            continue;
        };
        bump(&inner.counters.client_requests);
        let reply = ReplyHandle {
            request_id,
            role,
            remote,
            answers: Some(answers.clone()),
            _in_flight: permit,
        };
        if request_sender
            .send(ClientRequest { request, reply })
            .await
            .is_err()
        {
            break;
        }
    }
    // The writer ends once every outstanding reply handle is gone.
    drop(answers);
    let _ = writer.await;
}

/// Writes answers to a request stream, many per write; finishes the stream
/// when no answer can come any more, resets it when told to.
async fn write_answers<Resp: Serialize>(
    mut send: SendStream,
    mut answer_queue: mpsc::UnboundedReceiver<(u64, Answer<Resp>)>,
    reset: Arc<Notify>,
    max_frame_size: usize,
    max_batch_bytes: usize,
) {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            () = reset.notified() => {
                let _ = send.reset(error_code::BAD_FRAME);
                return;
            }
            answer = answer_queue.recv() => answer,
        };
        let Some(first) = first else { break };
        frame::encode_batch(
            first,
            || answer_queue.try_recv().ok(),
            &mut buffer,
            (max_frame_size, max_batch_bytes),
            |buffer, (request_id, _), error| {
                tracing::error!(request_id, %error, "cannot encode a response");
                let fallback = (request_id, Answer::<Resp>::UnencodableResponse);
                // Invariant: a fieldless answer always fits in a frame.
                frame::encode(&fallback, buffer, max_frame_size)
                    .expect("a fieldless answer encodes");
            },
        );
        if send.write_chunk(buffer.split().freeze()).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}
