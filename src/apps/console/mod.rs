//! `zoorpc console --listen ADDR`: the registry, its masters and what changes in them on one live
//! page in a browser, for operators who look before they type.
//!
//! Guarantees:
//! - Loopback by default (`127.0.0.1:8025`); another address only when given, and then a
//!   warning says what is exposed (the page has no login; with `--zk-auth-file` anyone who
//!   reaches it may act, after only a confirmation). `--listen` takes an IP address, as every
//!   program's listening flag does (`localhost:8025` is refused, naming `127.0.0.1:8025`).
//! - One ZooKeeper session and one watch of the root ([`TreeWatch`]) however many browsers
//!   look: every change re-reads the tree once (`state`) and the new state goes to every page
//!   by server-sent events (`/api/events`); `/api/state` is the same state as one JSON document.
//! - Every node under the root holding a provider is shown, bad data as bad data (with the
//!   reason), never hidden; an instance in the Curator layout as the provider a consumer calls; every election (a `<path>.epoch` companion) with its master, epoch,
//!   tenure, designee, and the masters seen since the console started (the timeline).
//! - ZooKeeper out of reach: the last state stays on the page, marked as such.
//! - Read-only without `--zk-auth-file`: the action endpoints answer 403 (`http`).
//! - The page (`page.html`, served by `http`) inserts every string from ZooKeeper as text, never as markup.
//! - Traffic only from the Prometheus listeners given with `--scrape` (`scrape`), never from
//!   an address found in ZooKeeper.
//!
//! [`TreeWatch`]: zoorpc_registry::TreeWatch

mod homes;
mod http;
mod scrape;
mod state;

use std::net::SocketAddr;

use zoorpc_provider::StopSignals;

use super::ZkArg;

/// `zoorpc console` flags.
#[derive(clap::Args, Debug)]
pub struct ConsoleArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`); with `--zk-auth-file` the page
    /// may act (designate a master), after a confirmation.
    #[command(flatten)]
    pub zk: ZkArg,
    /// Where to serve the page (another address than loopback lets others look, and act if
    /// --zk-auth-file is given)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8025", value_parser = crate::cli::socket_address)]
    pub listen: SocketAddr,
    /// The root to show: every service and election under it
    #[arg(long, default_value = "/", value_parser = super::znode_path_or_root)]
    pub root: String,
    /// Prometheus listeners to read traffic from, once a second (`zoorpc proxy --metrics ADDR`
    /// or another consumer's): calls and failures per provider
    #[arg(long, value_name = "ADDR", num_args = 1.., value_parser = crate::cli::socket_address)]
    pub scrape: Vec<SocketAddr>,
}

/// Runs `zoorpc console` until SIGTERM / Ctrl-C; returns the exit status.
pub fn run(args: ConsoleArgs) -> i32 {
    let credential = match super::credential_or_exit(&args.zk) {
        Ok(credential) => credential,
        Err(status) => return status,
    };
    let can_act = credential.is_some();
    super::block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on {}: {e}; give another --listen address",
                    args.listen
                )
            })?;
        let session = super::open_session(&args.zk.zk, credential).await?;
        let traffic = (!args.scrape.is_empty()).then(|| scrape::start(args.scrape.clone()));
        let states = state::follow(session.clone(), args.root.clone(), can_act, traffic)
            .await
            .map_err(|e| e.to_string())?;
        let mut signals = StopSignals::listen().map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        crate::say!("console at http://{addr}/");
        if let Some(warning) = exposure_warning(addr, can_act) {
            eprintln!("{warning}");
        }
        let console = http::Console {
            states,
            session,
            can_act,
        };
        tokio::select! {
            () = signals.recv() => Ok(0),
            () = http::serve(listener, console) => Ok::<_, String>(0),
        }
    })
}

/// What a console listening on `addr` beyond loopback exposes, said as a warning; `None` on
/// loopback. (`can_act`: whether `--zk-auth-file` was given.)
fn exposure_warning(addr: SocketAddr, can_act: bool) -> Option<String> {
    let ip = addr.ip();
    if ip.is_loopback() {
        return None;
    }
    let reach = if ip.is_unspecified() {
        format!("on all interfaces ({addr})")
    } else {
        format!("on {addr}")
    };
    let acting = if can_act {
        " and, with --zk-auth-file, may designate masters and change weights with this console's \
ZooKeeper credential: an action needs only the confirmation header (X-Zoorpc-Confirmed: yes)"
    } else {
        ""
    };
    Some(format!(
        "warning: the console listens {reach}: the page has no login, so anyone who can reach it \
sees every service, master and node's data under the root{acting}; listen on 127.0.0.1 (the \
default) and reach it through an SSH tunnel to keep it to this machine"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_beyond_loopback_warns_of_what_is_exposed() {
        let addr = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert_eq!(exposure_warning(addr("127.0.0.1:8025"), true), None);
        assert_eq!(exposure_warning(addr("[::1]:8025"), true), None);
        let all = exposure_warning(addr("0.0.0.0:8025"), false).unwrap();
        assert!(all.contains("all interfaces (0.0.0.0:8025)"), "{all}");
        assert!(
            all.contains("no login") && !all.contains("designate"),
            "{all}"
        );
        let acting = exposure_warning(addr("[::]:8025"), true).unwrap();
        assert!(acting.contains("all interfaces"), "{acting}");
        assert!(
            acting.contains("designate masters") && acting.contains("X-Zoorpc-Confirmed"),
            "{acting}"
        );
        let one = exposure_warning(addr("10.0.0.7:8025"), true).unwrap();
        assert!(one.contains("listens on 10.0.0.7:8025"), "{one}");
    }
}
