//! A fake payment processor for the forward tests and benchmark: an https server on
//! 127.0.0.1 with a CA made here (rcgen), reached as `localhost`, recording every request.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::PrivateKeyDer;
use serde_json::json;

/// One request as the fake processor received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

/// An answer the test writes from the request the fake got.
#[derive(Clone, Debug, Default)]
pub struct Canned {
    pub status: u16,
    /// Sent on the status line after the code.
    pub reason: Option<&'static str>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub body: Vec<u8>,
}

type Replier = Arc<dyn Fn(&Seen) -> Canned + Send + Sync>;

/// The fake processor. `/redirect` answers 302 to `/pay`, `/hang` never answers, `/huge`
/// answers 2 MiB, `/late` answers only once [`Fake::release`] is called; a path given to
/// [`Fake::on`] answers what its function writes; any other path answers 200 with the body
/// it got echoed back, so that the masking has something to mask.
pub struct Fake {
    pub port: u16,
    pub ca_pem: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    repliers: Arc<Mutex<HashMap<String, Replier>>>,
    late: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fake").field("port", &self.port).finish()
    }
}

impl Fake {
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Answers requests to `path` with what `reply` writes from each.
    pub fn on(&self, path: &str, reply: impl Fn(&Seen) -> Canned + Send + Sync + 'static) {
        self.repliers
            .lock()
            .unwrap()
            .insert(path.to_owned(), Arc::new(reply));
    }

    /// Lets one request waiting on `/late` answer.
    pub fn release(&self) {
        self.late.add_permits(1);
    }

    /// Waits until `n` requests have arrived (polling the record, a bounded number of times).
    pub async fn wait_for(&self, n: usize) {
        for _ in 0..2000 {
            if self.count() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the fake processor got {} requests, not {n}", self.count());
    }
}

struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    repliers: Arc<Mutex<HashMap<String, Replier>>>,
    late: Arc<tokio::sync::Semaphore>,
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
    port: u16,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let path = parts.uri.path().to_owned();
    let seen = Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let replier = shared.repliers.lock().unwrap().get(&path).cloned();
    if let Some(reply) = replier {
        let canned = reply(&seen);
        let mut builder = Response::builder().status(canned.status);
        for (name, value) in canned.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.body(Full::new(Bytes::from(canned.body))).unwrap();
        if let Some(reason) = canned.reason {
            response
                .extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
        }
        return response;
    }
    if path == "/late" {
        shared.late.acquire().await.unwrap().forget();
    }
    match path.as_str() {
        "/redirect" => Response::builder()
            .status(302)
            .header("location", format!("https://localhost:{port}/pay"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(Full::new(Bytes::new()))
        }
        "/huge" => Response::new(Full::new(Bytes::from(vec![b'a'; 2 * 1024 * 1024]))),
        _ => Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("request-id", "req_fake_1")
            .header("set-cookie", "session=secret")
            .body(Full::new(Bytes::from(
                json!({"id": "pm_1", "received": String::from_utf8_lossy(&body)}).to_string(),
            )))
            .unwrap(),
    }
}

pub async fn fake() -> Fake {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let repliers = Arc::new(Mutex::new(HashMap::new()));
    let late = Arc::new(tokio::sync::Semaphore::new(0));
    let recorder = Arc::new(Shared {
        seen: Arc::clone(&seen),
        repliers: Arc::clone(&repliers),
        late: Arc::clone(&late),
    });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            // Answers go out at once, not after the client's delayed ACK.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&recorder);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    let shared = Arc::clone(&seen);
                    async move { Ok::<_, std::convert::Infallible>(answer(req, shared, port).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Fake {
        port,
        ca_pem: ca.pem(),
        seen,
        repliers,
        late,
    }
}
