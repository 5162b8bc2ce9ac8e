//! What DPoP adds to a request: the same RS256 token through the layer as a bearer token and
//! as a DPoP-bound token with a fresh ES256 proof, next to the proof check alone
//! (`DpopVerifier::verify`) and the raw ES256 signature check it contains (aws-lc-rs, key
//! parsed once), measured in one run.
//!
//! ```sh
//! cargo bench --bench dpop
//! ```
//!
//! Every DPoP request needs its own proof (the replay check refuses a second use), so proofs
//! are signed before the clock starts. At the end a table of medians over interleaved rounds:
//! DPoP request / bearer request, and what DPoP adds over the proof's raw signature check.

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group};
use http::Request;
use protected_resource::dpop::DpopVerifier;
use protected_resource::testkit::{DpopProof, MockAuthorizationServer, SigningKey};
use protected_resource::{Algorithm, ProtectedResourceLayer, ResourceServerAuth};
use tower::{Layer, Service, ServiceExt};

const CANON: &str = "http://127.0.0.1:8000/mcp";

type Svc = protected_resource::ProtectedResource<
    tower::util::ServiceFn<
        fn(
            Request<Body>,
        ) -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>,
    >,
>;

fn ok_service(
    _: Request<Body>,
) -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>> {
    std::future::ready(Ok(http::Response::new(Body::empty())))
}

struct Setup {
    rt: tokio::runtime::Runtime,
    svc: Svc,
    bearer: String,
    bound: String,
    key: SigningKey,
    _server: MockAuthorizationServer,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let (server, auth, bearer, bound) = rt.block_on(async {
        let server = MockAuthorizationServer::start_with(&[Algorithm::RS256])
            .await
            .unwrap();
        let auth = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
            .build()
            .unwrap();
        let token = || server.token().audience(CANON).expires_in(86_400);
        let bearer = token().sign();
        let bound = token().dpop_bound(&key).sign();
        auth.validate(&bearer).await.unwrap(); // warms the key cache
        (server, auth, bearer, bound)
    });
    let svc = ProtectedResourceLayer::new(auth).layer(tower::service_fn(
        ok_service
            as fn(
                Request<Body>,
            )
                -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>,
    ));
    Setup {
        rt,
        svc,
        bearer,
        bound,
        key,
        _server: server,
    }
}

fn bearer_request(token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// A DPoP request with a fresh proof (signed here, outside any measurement).
fn dpop_request(key: &SigningKey, token: &str) -> Request<Body> {
    let proof = DpopProof::new(key, "POST", CANON)
        .access_token(token)
        .sign();
    Request::post("/mcp")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap()
}

fn send(rt: &tokio::runtime::Runtime, svc: &mut Svc, req: Request<Body>) {
    rt.block_on(async {
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), 200);
    });
}

/// The proof's signing input, signature and public key, for the raw check.
fn raw_parts(key: &SigningKey, proof: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let cut = proof.rfind('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(&proof[cut + 1..]).unwrap();
    let jwk = key.public_jwk();
    let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let point = [vec![4u8], coordinate("x"), coordinate("y")].concat();
    (proof.as_bytes()[..cut].to_vec(), signature, point)
}

fn benches(c: &mut Criterion) {
    let Setup {
        rt,
        mut svc,
        bearer,
        bound,
        key,
        _server,
    } = setup();
    let verifier = DpopVerifier::new();
    let proof = DpopProof::new(&key, "POST", CANON)
        .access_token(&bound)
        .sign();
    let (message, signature, point) = raw_parts(&key, &proof);
    let mut group = c.benchmark_group("dpop");
    group.bench_function("raw_es256_signature", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&point))
                .verify(&message, &signature)
                .unwrap()
        })
    });
    group.bench_function("proof_check", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&proof), "POST", CANON, &bound)
                .unwrap()
        })
    });
    group.bench_function("layer_bearer", |b| {
        b.iter_batched(
            || bearer_request(&bearer),
            |req| send(&rt, &mut svc, req),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("layer_dpop", |b| {
        b.iter_batched(
            || dpop_request(&key, &bound),
            |req| send(&rt, &mut svc, req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Nanoseconds per request over `requests`, built before the clock starts.
fn round(s: &mut Setup, requests: Vec<Request<Body>>) -> f64 {
    let n = requests.len() as f64;
    let t = Instant::now();
    for req in requests {
        send(&s.rt, &mut s.svc, req);
    }
    t.elapsed().as_nanos() as f64 / n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// 21 rounds of 200 requests each way, back to back, plus the raw signature check.
fn ratios() {
    let mut s = setup();
    let proof = DpopProof::new(&s.key, "POST", CANON)
        .access_token(&s.bound)
        .sign();
    let (message, signature, point) = raw_parts(&s.key, &proof);
    let (mut bearer, mut dpop, mut raw, mut by_bearer, mut added_by_raw) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..21 {
        let bearer_requests: Vec<_> = (0..200).map(|_| bearer_request(&s.bearer)).collect();
        let dpop_requests: Vec<_> = (0..200).map(|_| dpop_request(&s.key, &s.bound)).collect();
        let t = Instant::now();
        for _ in 0..200 {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .verify(&message, &signature)
                .unwrap();
        }
        let r = t.elapsed().as_nanos() as f64 / 200.0;
        let b = round(&mut s, bearer_requests);
        let d = round(&mut s, dpop_requests);
        bearer.push(b);
        dpop.push(d);
        raw.push(r);
        by_bearer.push(d / b);
        added_by_raw.push((d - b) / r);
    }
    println!(
        "\n| bearer request (µs) | DPoP request (µs) | raw ES256 check (µs) | DPoP / bearer | (DPoP − bearer) / raw ES256 |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
        median(bearer) / 1e3,
        median(dpop) / 1e3,
        median(raw) / 1e3,
        median(by_bearer),
        median(added_by_raw)
    );
}

criterion_group!(dpop, benches);

fn main() {
    dpop();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
