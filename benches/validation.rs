//! The layer's cache-hit cost per algorithm, next to the raw signature check with a pre-parsed
//! aws-lc-rs key, jsonwebtoken's `decode` of the same token, and the peer crate
//! `tower-oauth2-resource-server` (aws-lc-rs backend) as a layer around the same service,
//! measured in one run.
//!
//! ```sh
//! cargo bench --bench validation
//! ```
//!
//! Criterion reports each benchmark; at the end a table of medians and ratios is printed
//! (layer / raw signature, layer / jsonwebtoken decode, layer / peer layer).

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group};
use http::Request;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{Algorithm, ProtectedResourceLayer, ResourceServerAuth};
use tower::{Layer, Service, ServiceExt};
use tower_oauth2_resource_server::claims::DefaultClaims;
use tower_oauth2_resource_server::layer::OAuth2ResourceServerService;
use tower_oauth2_resource_server::server::OAuth2ResourceServer;
use tower_oauth2_resource_server::tenant::TenantConfiguration;
use tower_oauth2_resource_server::validation::ClaimsValidationSpec;

const CANON: &str = "http://127.0.0.1:8000/mcp";
const ALGS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

struct Case {
    alg: Algorithm,
    token: String,
    auth: ResourceServerAuth,
    raw_key: ParsedPublicKey,
    jwt_key: jsonwebtoken::DecodingKey,
    jwt_validation: jsonwebtoken::Validation,
    peer: OAuth2ResourceServer<DefaultClaims>,
    _server: MockAuthorizationServer,
}

fn b64(s: &serde_json::Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s.as_str().unwrap()).unwrap()
}

fn raw_key(alg: Algorithm, jwk: &serde_json::Value) -> ParsedPublicKey {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let (n, e) = (b64(&jwk["n"]), b64(&jwk["e"]));
            let params = if alg == Algorithm::RS256 {
                &sig::RSA_PKCS1_2048_8192_SHA256
            } else {
                &sig::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(params)
                .unwrap()
        }
        Algorithm::EdDSA => ParsedPublicKey::new(&sig::ED25519, b64(&jwk["x"])).unwrap(),
        _ => {
            let mut point = vec![4];
            point.extend(b64(&jwk["x"]));
            point.extend(b64(&jwk["y"]));
            let a = if alg == Algorithm::ES256 {
                &sig::ECDSA_P256_SHA256_FIXED
            } else {
                &sig::ECDSA_P384_SHA384_FIXED
            };
            ParsedPublicKey::new(a, point).unwrap()
        }
    }
}

fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.as_str().parse().unwrap()
}

fn raw_verify(case: &Case) -> bool {
    let (msg, sig64) = case.token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig64).unwrap();
    case.raw_key.verify_sig(msg.as_bytes(), &sig).is_ok()
}

fn jwt_decode(case: &Case) -> bool {
    jsonwebtoken::decode::<serde_json::Value>(&case.token, &case.jwt_key, &case.jwt_validation)
        .is_ok()
}

fn setup(rt: &tokio::runtime::Runtime) -> Vec<Case> {
    rt.block_on(async {
        let mut cases = Vec::new();
        for alg in ALGS {
            let server = MockAuthorizationServer::start_with(&[alg]).await.unwrap();
            let auth = ResourceServerAuth::builder()
                .canonical_url(CANON)
                .authorization_server(server.entry())
                .build()
                .unwrap();
            let token = server
                .token()
                .audience(CANON)
                .expires_in(86_400)
                .scope("mcp:tools")
                // `nbf` too, which the peer's recommended validation requires.
                .claim(
                    "nbf",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        - 60,
                )
                .sign();
            // Warm the key cache.
            auth.validate(&token).await.unwrap();
            let jwks: serde_json::Value = reqwest::get(server.jwks_uri())
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let jwk = jwks["keys"][0].clone();
            let mut v = jsonwebtoken::Validation::new(jwt_alg(alg));
            v.set_audience(&[CANON]);
            v.set_issuer(&[server.issuer()]);
            let jwt_key =
                jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap())
                    .unwrap();
            // The peer, configured to check the same things: issuer, audience, expiry, nbf.
            let tenant = TenantConfiguration::builder(server.issuer())
                .jwks_url(server.jwks_uri())
                .audiences(&[CANON])
                .claims_validation(ClaimsValidationSpec::recommended(
                    server.issuer(),
                    &vec![CANON.to_owned()],
                ))
                .build()
                .await
                .unwrap();
            let peer = <OAuth2ResourceServer>::builder()
                .add_tenant(tenant)
                .build()
                .await
                .unwrap();
            let case = Case {
                alg,
                token,
                auth,
                raw_key: raw_key(alg, &jwk),
                jwt_key,
                jwt_validation: v,
                peer,
                _server: server,
            };
            // The peer fetches its keys in the background: wait until it accepts the token.
            let mut svc = peer_layered(&case);
            let started = Instant::now();
            while !call(&mut svc, &case.token).await {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "peer never ready"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            cases.push(case);
        }
        cases
    })
}

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

fn layered(case: &Case) -> Svc {
    ProtectedResourceLayer::new(case.auth.clone()).layer(tower::service_fn(
        ok_service
            as fn(
                Request<Body>,
            )
                -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>,
    ))
}

type PeerSvc = OAuth2ResourceServerService<
    tower::util::ServiceFn<
        fn(
            Request<Body>,
        ) -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>,
    >,
    Body,
    DefaultClaims,
>;

fn peer_layered(case: &Case) -> PeerSvc {
    case.peer.into_layer::<Body>().layer(tower::service_fn(
        ok_service
            as fn(
                Request<Body>,
            )
                -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>,
    ))
}

/// One request with this bearer token through `svc` (our layer or the peer's); `true` on 200.
async fn call<S>(svc: &mut S, token: &str) -> bool
where
    S: Service<Request<Body>, Response = http::Response<Body>>,
    S::Error: std::fmt::Debug,
{
    let req = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    res.status() == 200
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = setup(&rt);
    let mut group = c.benchmark_group("cache_hit");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for case in &cases {
        let name = case.alg.as_str();
        group.bench_function(format!("{name}/raw_signature"), |b| {
            b.iter(|| assert!(raw_verify(black_box(case))))
        });
        group.bench_function(format!("{name}/jsonwebtoken_decode"), |b| {
            b.iter(|| assert!(jwt_decode(black_box(case))))
        });
        group.bench_function(format!("{name}/validate"), |b| {
            b.to_async(&rt).iter(|| async {
                assert!(case.auth.validate(black_box(&case.token)).await.is_ok())
            })
        });
        let mut svc = layered(case);
        group.bench_function(format!("{name}/layer"), |b| {
            b.iter(|| rt.block_on(async { assert!(call(&mut svc, black_box(&case.token)).await) }))
        });
        let mut peer = peer_layered(case);
        group.bench_function(format!("{name}/peer_tower_oauth2_resource_server"), |b| {
            b.iter(|| rt.block_on(async { assert!(call(&mut peer, black_box(&case.token)).await) }))
        });
    }
    group.finish();
}

/// Nanoseconds per request through `svc` over one round of `n` requests, built before the
/// clock starts (building a request is the HTTP server's work, not the layer's).
fn round_requests<S>(rt: &tokio::runtime::Runtime, svc: &mut S, token: &str, n: u32) -> f64
where
    S: Service<Request<Body>, Response = http::Response<Body>>,
    S::Error: std::fmt::Debug,
{
    let requests: Vec<_> = (0..n)
        .map(|_| {
            Request::post("/mcp")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    for req in requests {
        rt.block_on(async {
            let res = svc.ready().await.unwrap().call(req).await.unwrap();
            assert_eq!(res.status(), 200);
        });
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Nanoseconds per call over one round of `n` calls.
fn round_ns(mut f: impl FnMut() -> bool, n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        assert!(f());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per algorithm, 21 rounds in which the four variants run back to back, so that a slow
/// spell of this shared machine hits all four alike; the ratios are medians of per-round
/// ratios. Requests are built before each round's clock starts, for both layers alike.
fn ratios() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = setup(&rt);
    println!(
        "\n| alg | raw signature (µs) | jsonwebtoken decode (µs) | peer layer (µs) | layer (µs) | layer / raw | layer / decode | layer / peer |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for case in &cases {
        let n = if case.alg == Algorithm::ES384 {
            100
        } else {
            300
        };
        let mut svc = layered(case);
        let mut peer_svc = peer_layered(case);
        let mut rounds: [Vec<f64>; 4] = Default::default();
        let mut per_round: [Vec<f64>; 3] = Default::default();
        for _ in 0..21 {
            let raw = round_ns(|| raw_verify(case), n);
            let jwt = round_ns(|| jwt_decode(case), n);
            let peer = round_requests(&rt, &mut peer_svc, &case.token, n);
            let layer = round_requests(&rt, &mut svc, &case.token, n);
            for (v, x) in rounds.iter_mut().zip([raw, jwt, peer, layer]) {
                v.push(x);
            }
            for (v, x) in per_round
                .iter_mut()
                .zip([layer / raw, layer / jwt, layer / peer])
            {
                v.push(x);
            }
        }
        let [raw, jwt, peer, layer] = rounds.map(median);
        let [by_raw, by_jwt, by_peer] = per_round.map(median);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |",
            case.alg,
            raw / 1e3,
            jwt / 1e3,
            peer / 1e3,
            layer / 1e3,
            by_raw,
            by_jwt,
            by_peer
        );
    }
}

criterion_group!(cache_hit, benches);

fn main() {
    cache_hit();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
