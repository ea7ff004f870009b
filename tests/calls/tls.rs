//! TLS (`https://` providers), end to end against the real ZooKeeper, in process: certificates
//! are made at test time (rcgen), providers and HA servers serve TLS and register `https://`,
//! consumers and master clients verify them against a CA; mutual TLS, mixed lists, the
//! self-check. The programs and their flags: `tests/programs/tls_programs.rs`.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::pki::{Ca, Pki};
use common::{raw_client, zk};
use zoorpc::apps::echo::{EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::{
    CallPolicy, Consumer, ConsumerConfig, ConsumerTls, MasterClient, MasterClientConfig, Pem,
};
use zoorpc::provider::{HaServer, HaServerConfig, Provider, ProviderConfig, ProviderTls};
use zoorpc::registry::Role;
use zoorpc_testkit::unique_path;

/// An in-process echo provider, TLS when `tls` is given; `calls` counts handler starts.
async fn echo_provider(base: &str, tls: Option<ProviderTls>) -> (Provider, Arc<AtomicU64>) {
    let service = EchoService::new(Duration::ZERO);
    let calls = service.calls();
    let config = ProviderConfig::new(zk().connect_string(), base, 0)
        .drain_grace(Duration::from_millis(50))
        .tls(tls);
    let provider = Provider::serve(config, EchoServer::new(service))
        .await
        .expect("echo provider starts");
    (provider, calls)
}

/// A consumer of `base` with `tls`, once it lists `n` providers.
async fn consumer(base: &str, tls: Option<ConsumerTls>, n: usize) -> Consumer {
    let mut config = ConsumerConfig::new(zk().connect_string(), base);
    config.tls = tls;
    let consumer = Consumer::connect_with(config).await.expect("consumer");
    assert!(
        consumer
            .wait_until(Duration::from_secs(10), |u| u.len() == n)
            .await,
        "the consumer never listed {n} providers: {:?}",
        consumer.urls()
    );
    consumer
}

fn say(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

/// One echo call through the consumer's balanced channel: the server's address, or the error.
async fn echo(consumer: &Consumer, text: &str) -> Result<String, String> {
    let mut client = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(20), client.say(say(text)))
        .await
        .expect("a call never returned");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a call took {:?}",
        started.elapsed()
    );
    reply
        .map(|r| r.into_inner().server)
        .map_err(|status| zoorpc::registry::error_chain(&status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_provider_registers_https_and_a_consumer_trusting_its_ca_calls_it() {
    let pki = Pki::new();
    let base = unique_path("tls-basic");
    let (provider, calls) = echo_provider(&base, Some(pki.provider_tls())).await;
    let port = provider.local_addr().port();
    assert_eq!(provider.url().as_str(), format!("https://127.0.0.1:{port}"));
    // What ZooKeeper holds, read independently of zoorpc.
    let raw = raw_client(&zk().connect_string()).await;
    let node = provider.node_path().unwrap();
    let (data, _) = raw.get_data(&node).await.unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        format!("https://127.0.0.1:{port}")
    );

    let consumer = consumer(&base, Some(pki.consumer_tls()), 1).await;
    for i in 0..10 {
        let server = echo(&consumer, &format!("t{i}")).await.unwrap();
        assert_eq!(server, format!("127.0.0.1:{port}"));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 10);
    let answer = consumer.say_hello("x").await;
    assert!(answer.is_err(), "the echo provider serves no HelloService");
    provider.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_clear_error_and_nothing_reaches_the_provider() {
    let pki = Pki::new();
    let base = unique_path("tls-untrusted");
    let (provider, calls) = echo_provider(&base, Some(pki.provider_tls())).await;
    let port = provider.local_addr().port();

    // Trusting another CA: the handshake fails, naming the certificate problem and the address.
    let other = Ca::new("another CA");
    let distrusting = ConsumerTls::new(Pem::bytes(other.pem)).unwrap();
    let consumer = consumer(&base, Some(distrusting), 1).await;
    let error = echo(&consumer, "untrusted").await.unwrap_err();
    assert!(error.contains("TLS handshake failed"), "{error}");
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    let endpoint = consumer.endpoints()[0].clone();
    assert!(
        endpoint.is_ejected(),
        "a failed handshake ejects like a failed connection"
    );

    // A name the certificate does not carry is refused too.
    let wrong_name = pki
        .consumer_tls()
        .with_server_name("elsewhere.example")
        .unwrap();
    let consumer = self::consumer(&base, Some(wrong_name), 1).await;
    let error = echo(&consumer, "wrong name").await.unwrap_err();
    assert!(
        error.contains("certificate not valid for name \"elsewhere.example\""),
        "{error}"
    );

    // No TLS configured at all: never dialled, the error says what to give.
    let plain = self::consumer(&base, None, 1).await;
    let error = echo(&plain, "no tls").await.unwrap_err();
    assert!(error.contains("ConsumerConfig::tls"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");

    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "the provider served a call"
    );
    provider.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_server_registered_as_https_is_never_sent_plaintext() {
    let pki = Pki::new();
    // A plaintext echo provider, and a node under another base path that says https:// for it.
    let (plain, calls) = echo_provider(&unique_path("tls-plain"), None).await;
    let base = unique_path("tls-liar");
    let raw = raw_client(&zk().connect_string()).await;
    raw.mkdir(
        &base,
        &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let url = format!("https://127.0.0.1:{}", plain.local_addr().port());
    raw.create(
        &format!("{base}/provider"),
        url.as_bytes(),
        &zookeeper_client::CreateMode::EphemeralSequential
            .with_acls(zookeeper_client::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let consumer = consumer(&base, Some(pki.consumer_tls()), 1).await;
    let error = echo(&consumer, "plaintext?").await.unwrap_err();
    assert!(error.contains("TLS handshake failed"), "{error}");
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    plain.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_check_refuses_an_advertised_address_answered_by_another_tls_server() {
    // An impostor serving TLS (same CA, another key) on 127.0.0.2:P, and a provider on
    // 127.0.0.1:P advertising 127.0.0.2: its self-check reaches the impostor, whose
    // certificate is not its own, so it must not register.
    let pki = Pki::new();
    let ca = Ca::new("impostor CA");
    let (cert, key) = ca.issue(&["127.0.0.2"]);
    let config = ProviderConfig::new(zk().connect_string(), unique_path("tls-impostor"), 0)
        .listen("127.0.0.2:0".parse().unwrap())
        .tls(ProviderTls::new(Pem::bytes(cert), Pem::bytes(key)).unwrap());
    let impostor = zoorpc::apps::hello::serve(config)
        .await
        .expect("the impostor starts");
    let port = impostor.local_addr().port();

    let base = unique_path("tls-pinned");
    let config = ProviderConfig::new(zk().connect_string(), &base, port)
        .advertise_host("127.0.0.2")
        .tls(pki.provider_tls());
    let error = zoorpc::apps::hello::serve(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("https://127.0.0.2:{port}"))
            && error.contains("another certificate than this provider's"),
        "{error}"
    );
    let raw = raw_client(&zk().connect_string()).await;
    let children = raw.list_children(&base).await;
    assert!(
        matches!(&children, Err(zookeeper_client::Error::NoNode))
            || matches!(&children, Ok(c) if c.is_empty()),
        "{children:?}"
    );
    impostor.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_consumer_without_a_client_certificate_and_serves_one_with() {
    let pki = Pki::new();
    let base = unique_path("tls-mutual");
    let tls = pki
        .provider_tls()
        .require_client_certificates(Pem::bytes(pki.ca.clone()))
        .unwrap();
    let (provider, calls) = echo_provider(&base, Some(tls)).await;

    let anonymous = consumer(&base, Some(pki.consumer_tls()), 1).await;
    let error = echo(&anonymous, "who?").await.unwrap_err();
    assert!(error.contains("CertificateRequired"), "{error}");
    assert!(error.contains("ConsumerTls::with_identity"), "{error}");
    assert_eq!(calls.load(Ordering::Relaxed), 0);

    // A client certificate from another CA is refused as well.
    let other = Ca::new("another CA");
    let (cert, key) = other.issue(&["stranger"]);
    let stranger = pki
        .consumer_tls()
        .with_identity(Pem::bytes(cert), Pem::bytes(key))
        .unwrap();
    let stranger = consumer(&base, Some(stranger), 1).await;
    assert!(echo(&stranger, "stranger").await.is_err());
    assert_eq!(calls.load(Ordering::Relaxed), 0);

    let known = pki
        .consumer_tls()
        .with_identity(
            Pem::bytes(pki.client_cert.clone()),
            Pem::bytes(pki.client_key.clone()),
        )
        .unwrap();
    let known = consumer(&base, Some(known), 1).await;
    for i in 0..5 {
        echo(&known, &format!("k{i}")).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::Relaxed), 5);
    provider.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_a_ca_other_than_the_servers_start_and_serve() {
    // The provider's certificate is not one its client CA trusts: its self-check (a pinned
    // handshake) must not depend on that.
    let pki = Pki::new();
    let clients = Ca::new("client CA");
    let (cert, key) = clients.issue(&["client.zoorpc.test"]);
    let base = unique_path("tls-client-ca");
    let tls = pki
        .provider_tls()
        .require_client_certificates(Pem::bytes(clients.pem.clone()))
        .unwrap();
    let (provider, calls) = echo_provider(&base, Some(tls)).await;
    let with_pki_client = pki
        .consumer_tls()
        .with_identity(
            Pem::bytes(pki.client_cert.clone()),
            Pem::bytes(pki.client_key.clone()),
        )
        .unwrap();
    let refused = consumer(&base, Some(with_pki_client), 1).await;
    let error = echo(&refused, "wrong issuer").await.unwrap_err();
    assert!(
        error.contains("the provider ended the TLS session"),
        "{error}"
    );
    let accepted = pki
        .consumer_tls()
        .with_identity(Pem::bytes(cert), Pem::bytes(key))
        .unwrap();
    let accepted = consumer(&base, Some(accepted), 1).await;
    echo(&accepted, "right issuer").await.unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    provider.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_server_serving_tls_is_called_by_a_master_client_trusting_its_ca() {
    let pki = Pki::new();
    let path = unique_path("tls-ha");
    let (service, calls) = {
        let service = EchoService::new(Duration::ZERO);
        let calls = service.calls();
        (service, calls)
    };
    let config = HaServerConfig::new(zk().connect_string(), &path, 0)
        .session_timeout(Duration::from_secs(2))
        .tls(pki.provider_tls());
    let server = HaServer::serve(config, EchoServer::new(service))
        .await
        .expect("the TLS HA server starts");
    let election = server.election().expect("contending");
    assert!(
        election
            .wait_for(Duration::from_secs(10), |r| matches!(
                r,
                Role::Master { .. }
            ))
            .await
            .is_some(),
        "never master: {}",
        server.role()
    );

    let mut with_ca = MasterClientConfig::new(zk().connect_string(), &path);
    with_ca.tls = Some(pki.consumer_tls());
    let client = MasterClient::connect_with(with_ca).await.unwrap();
    let mut echo = EchoClient::new(client.channel());
    let reply = echo.say(say("master over TLS")).await.unwrap().into_inner();
    assert_eq!(reply.server, server.address());

    // A master client without TLS: the call fails (plaintext to a TLS server gets no HTTP/2
    // greeting), within its bound; the server handled nothing from it.
    let mut plain = MasterClientConfig::new(zk().connect_string(), &path);
    plain.switch_over_timeout = Duration::from_secs(1);
    let client = MasterClient::connect_with(plain).await.unwrap();
    let mut echo = EchoClient::new(client.channel());
    assert!(echo.say(say("plaintext")).await.is_err());
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // A master client trusting another CA: TLS refuses the master, and the call says so at
    // once, not after its 15 s switch-over bound of handshakes.
    let mut untrusting = MasterClientConfig::new(zk().connect_string(), &path);
    untrusting.tls = Some(Pki::new().consumer_tls());
    let client = MasterClient::connect_with(untrusting).await.unwrap();
    let mut echo = EchoClient::new(client.channel());
    let started = Instant::now();
    let status = echo.say(say("untrusted")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}: {status}",
        started.elapsed()
    );
    assert!(
        status.message().contains("TLS handshake failed"),
        "{status}"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_https_providers_in_one_list_are_both_used() {
    let pki = Pki::new();
    let base = unique_path("tls-mixed");
    let (plain, plain_calls) = echo_provider(&base, None).await;
    let (secure, secure_calls) = echo_provider(&base, Some(pki.provider_tls())).await;
    let consumer = consumer(&base, Some(pki.consumer_tls()), 2).await;
    let schemes: Vec<String> = consumer
        .urls()
        .iter()
        .map(|u| u.scheme().to_owned())
        .collect();
    assert!(schemes.contains(&"http".to_owned()) && schemes.contains(&"https".to_owned()));
    for i in 0..60 {
        echo(&consumer, &format!("m{i}")).await.unwrap();
    }
    let (p, s) = (
        plain_calls.load(Ordering::Relaxed),
        secure_calls.load(Ordering::Relaxed),
    );
    assert_eq!(p + s, 60);
    assert!(p >= 10 && s >= 10, "plaintext {p}, TLS {s} of 60");
    plain.shutdown().await.unwrap();
    secure.shutdown().await.unwrap();
}
