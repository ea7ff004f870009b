//! `HaServer` as a library, in process, against a real ZooKeeper, serving the tests' own Echo
//! service (nothing HelloService-specific): only the master runs handlers; a standby answers
//! the marked `UNAVAILABLE` without running any; `MasterClient` calls reach the master, and the
//! standby once the master resigned; `run_until(future)` stops and resigns.

use crate::common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::zk;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zoorpc::consumer::MasterClient;
use zoorpc::provider::{HaServer, HaServerConfig, STANDBY_METADATA, Services, is_standby_refusal};
use zoorpc::registry::Role;
use zoorpc_testkit::unique_path;

mod echo {
    tonic::include_proto!("echo.v1");
}

use echo::echo_client::EchoClient;
use echo::echo_server::{Echo, EchoServer};
use echo::{EchoReply, EchoRequest};

const SETTLE: Duration = Duration::from_secs(10);

/// An Echo server that counts the requests its handlers ran.
#[derive(Clone)]
struct CountingEcho {
    name: &'static str,
    handled: Arc<AtomicUsize>,
}

impl CountingEcho {
    fn new(name: &'static str) -> (CountingEcho, Arc<AtomicUsize>) {
        let handled = Arc::new(AtomicUsize::new(0));
        let echo = CountingEcho {
            name,
            handled: handled.clone(),
        };
        (echo, handled)
    }

    fn reply(&self, text: String) -> EchoReply {
        EchoReply {
            text,
            server: self.name.to_owned(),
            ..Default::default()
        }
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for CountingEcho {
    async fn say(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(self.reply(request.into_inner().text)))
    }

    type ExpandStream = ReplyStream;

    async fn expand(&self, request: Request<EchoRequest>) -> Result<Response<ReplyStream>, Status> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        let replies: Vec<Result<EchoReply, Status>> = (0..request.count)
            .map(|i| Ok(self.reply(format!("{} {i}", request.text))))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn collect(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        let mut stream = request.into_inner();
        let mut reply = self.reply(String::new());
        while let Some(message) = stream.next().await {
            reply.messages += 1;
            reply.payload_bytes += message?.payload.len() as u64;
        }
        Ok(Response::new(reply))
    }
}

fn config(path: &str) -> HaServerConfig {
    HaServerConfig::new(zk().connect_string(), path, 0)
        .session_timeout(Duration::from_secs(2))
        .drain_timeout(Duration::from_secs(5))
}

async fn wait_role(server: &HaServer, what: &str, predicate: impl FnMut(&Role) -> bool) {
    let election = server.election().expect("still contending");
    assert!(
        election.wait_for(SETTLE, predicate).await.is_some(),
        "{} did not become {what} within {SETTLE:?}: {}",
        server.address(),
        server.role()
    );
}

/// Waits (on the health Watch stream) until `service` at `address` reports `wanted`.
async fn wait_health(address: &str, service: &str, wanted: ServingStatus) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("health connects");
    let mut health = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let mut statuses = health.watch(request).await.expect("watch").into_inner();
    let seen = tokio::time::timeout(SETTLE, async {
        while let Some(status) = statuses.next().await {
            if status.expect("health status").status() == wanted {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        seen,
        Ok(true),
        "{address} {service:?} never said {wanted:?}"
    );
}

/// Calls `Say` on the server at `address` directly (no zoorpc client).
async fn say_directly(address: &str, text: &str) -> Result<EchoReply, Status> {
    let mut client = EchoClient::connect(format!("http://{address}"))
        .await
        .expect("the server accepts connections");
    client
        .say(EchoRequest {
            text: text.into(),
            ..Default::default()
        })
        .await
        .map(Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_master_runs_handlers_and_a_standby_refuses_with_the_marker() {
    let path = format!("{}/Echo:1.0.0", unique_path("ha-lib"));
    let (echo_a, handled_a) = CountingEcho::new("a");
    let (echo_b, handled_b) = CountingEcho::new("b");
    let mut a = HaServer::serve(config(&path), EchoServer::new(echo_a))
        .await
        .expect("a serves");
    wait_role(&a, "master", Role::is_master).await;
    let b = HaServer::serve(config(&path), EchoServer::new(echo_b))
        .await
        .expect("b serves");
    let a_address = a.address().to_owned();
    wait_role(&b, "a standby of a", |r| {
        *r == Role::Standby {
            master: a_address.clone(),
        }
    })
    .await;
    assert_eq!(b.local_addr().to_string(), b.address());

    // Health: both processes are up; only the master serves the Echo service.
    wait_health(a.address(), "", ServingStatus::Serving).await;
    wait_health(b.address(), "", ServingStatus::Serving).await;
    wait_health(a.address(), "echo.v1.Echo", ServingStatus::Serving).await;
    wait_health(b.address(), "echo.v1.Echo", ServingStatus::NotServing).await;

    // A raw client at the standby: the marked refusal naming the master, no handler run; the
    // same for streaming calls.
    let refusal = say_directly(b.address(), "to the standby")
        .await
        .expect_err("a standby refuses");
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
    assert!(is_standby_refusal(&refusal), "{refusal:?}");
    let marked = refusal
        .metadata()
        .get(STANDBY_METADATA)
        .and_then(|v| v.to_str().ok());
    assert_eq!(marked, Some(a.address()));
    let mut raw_b = EchoClient::connect(format!("http://{}", b.address()))
        .await
        .expect("b accepts connections");
    let expand = raw_b
        .expand(EchoRequest {
            text: "x".into(),
            count: 3,
            ..Default::default()
        })
        .await
        .expect_err("a standby refuses a stream");
    assert!(is_standby_refusal(&expand), "{expand:?}");
    let uploads = tokio_stream::iter(vec![EchoRequest::default(); 3]);
    let collect = raw_b.collect(uploads).await.expect_err("refused");
    assert!(is_standby_refusal(&collect), "{collect:?}");
    assert_eq!(handled_b.load(Ordering::SeqCst), 0);

    // A MasterClient reaches the master, unary and streaming.
    let client = MasterClient::connect(&zk().connect_string(), &path)
        .await
        .expect("master client");
    let mut echo = EchoClient::new(client.channel());
    for i in 0..5 {
        let reply = echo
            .say(EchoRequest {
                text: format!("call {i}"),
                ..Default::default()
            })
            .await
            .expect("the master answers")
            .into_inner();
        assert_eq!(
            (reply.server.as_str(), reply.text),
            ("a", format!("call {i}"))
        );
    }
    let mut replies = echo
        .expand(EchoRequest {
            text: "x".into(),
            count: 3,
            ..Default::default()
        })
        .await
        .expect("the master streams")
        .into_inner();
    let mut streamed = 0;
    while let Some(reply) = replies.next().await {
        assert_eq!(reply.expect("stream item").server, "a");
        streamed += 1;
    }
    assert_eq!(streamed, 3);
    assert_eq!(handled_a.load(Ordering::SeqCst), 6);
    assert_eq!(handled_b.load(Ordering::SeqCst), 0);

    // The master resigns: the standby serves, and the resigned one refuses (knowing no master).
    a.resign().await.expect("a resigns");
    assert_eq!(a.role(), Role::Left);
    wait_role(&b, "master", Role::is_master).await;
    wait_health(b.address(), "echo.v1.Echo", ServingStatus::Serving).await;
    wait_health(a.address(), "echo.v1.Echo", ServingStatus::NotServing).await;
    let reply = echo
        .say(EchoRequest {
            text: "after".into(),
            ..Default::default()
        })
        .await
        .expect("the new master answers")
        .into_inner();
    assert_eq!(reply.server, "b");
    let refusal = say_directly(a.address(), "to the resigned")
        .await
        .expect_err("a resigned server refuses");
    assert!(is_standby_refusal(&refusal), "{refusal:?}");
    assert_eq!(handled_a.load(Ordering::SeqCst), 6);
    assert_eq!(handled_b.load(Ordering::SeqCst), 1);

    a.shutdown().await.expect("a stops");
    b.shutdown().await.expect("b stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_a_future_stops_and_resigns() {
    let path = format!("{}/Echo:1.0.0", unique_path("ha-lib-stop"));
    let (echo, handled) = CountingEcho::new("solo");
    let server = HaServer::serve(config(&path), EchoServer::new(echo))
        .await
        .expect("serves");
    wait_role(&server, "master", Role::is_master).await;
    let address = server.address().to_owned();
    let reply = say_directly(&address, "hi")
        .await
        .expect("the master answers");
    assert_eq!(reply.server, "solo");
    assert_eq!(handled.load(Ordering::SeqCst), 1);

    let raw = common::raw_client(&zk().connect_string()).await;
    let (_, master_gone) = raw
        .check_and_watch_stat(&path)
        .await
        .expect("watch the master node");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = stop_rx.await;
    }));
    stop_tx.send(()).expect("the server still runs");
    let stopped = tokio::time::timeout(SETTLE, running)
        .await
        .expect("run_until returns once its future completes")
        .expect("task");
    assert!(stopped.is_ok(), "{stopped:?}");
    // The node was deleted before run_until returned (resign, not session expiry).
    let event = tokio::time::timeout(Duration::from_secs(1), master_gone.changed())
        .await
        .expect("the master node was deleted");
    assert_eq!(event.event_type, zookeeper_client::EventType::NodeDeleted);
    assert!(matches!(raw.check_stat(&path).await, Ok(None)));
    // And the server no longer accepts connections.
    assert!(
        EchoClient::connect(format!("http://{address}"))
            .await
            .is_err()
    );
}

/// Several services through `serve_with`: health names each SERVING on the master (a
/// health-checking load balancer finds the master by any of them), NOT_SERVING on a standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_reports_the_named_services_serving_only_on_the_master() {
    let path = format!("{}/Echo:1.0.0", unique_path("ha-lib-named"));
    let (echo_a, _) = CountingEcho::new("a");
    let a = HaServer::serve_with(config(&path), move |_| {
        Services::new().add_service(EchoServer::new(echo_a))
    })
    .await
    .expect("a serves");
    wait_role(&a, "master", Role::is_master).await;
    let (echo_b, _) = CountingEcho::new("b");
    let b = HaServer::serve_with(config(&path), move |_| {
        Services::new().add_service(EchoServer::new(echo_b))
    })
    .await
    .expect("b serves");
    wait_role(&b, "standby", |r| matches!(r, Role::Standby { .. })).await;
    wait_health(a.address(), "echo.v1.Echo", ServingStatus::Serving).await;
    wait_health(b.address(), "echo.v1.Echo", ServingStatus::NotServing).await;
    b.shutdown().await.expect("b stops");
    a.shutdown().await.expect("a stops");
}

/// A channel kept after its `MasterClient` was dropped still follows the master: when the
/// master resigns and another takes over, calls reach the new one (they used to spin on a dead
/// watch, some 8,500 attempts a second, and never find it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_kept_after_its_master_client_is_dropped_follows_the_master() {
    let path = format!("{}/Echo:1.0.0", unique_path("ha-orphan"));
    let (echo_a, _) = CountingEcho::new("a");
    let a = HaServer::serve(config(&path), EchoServer::new(echo_a))
        .await
        .expect("a serves");
    wait_role(&a, "master", Role::is_master).await;
    let mut client = {
        let master = MasterClient::connect(&zk().connect_string(), &path)
            .await
            .expect("master client");
        EchoClient::new(master.channel())
    };
    let say = |text: &str| EchoRequest {
        text: text.into(),
        ..Default::default()
    };
    let reply = client.say(say("to a")).await.expect("a answers");
    assert_eq!(reply.into_inner().server, "a");

    let (echo_b, _) = CountingEcho::new("b");
    let b = HaServer::serve(config(&path), EchoServer::new(echo_b))
        .await
        .expect("b serves");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let a_running = tokio::spawn(a.run_until(async {
        let _ = stop_rx.await;
    }));
    stop_tx.send(()).expect("a still runs");
    a_running.await.expect("task").expect("a resigns");
    wait_role(&b, "master", Role::is_master).await;
    let started = std::time::Instant::now();
    let reply = client.say(say("to b")).await.expect("b answers");
    assert_eq!(reply.into_inner().server, "b");
    assert!(started.elapsed() < SETTLE, "{:?}", started.elapsed());
    b.shutdown().await.expect("b stops");
}
