//! `MasterElection`: active/standby election on one `EPHEMERAL` node, with fencing, a local
//! lease, and participant nodes.
//!
//! ## Nodes (readable with `zkCli.sh`)
//! - `<path>` (default `/soa/master/services/<Service>:<version>`), `EPHEMERAL`: the master
//!   node; data = the holder's address `host:port`. Whoever's address is in the data is the
//!   master, so an operator hands mastership over by setting the data ([`designate`]).
//! - `<path>.epoch`, persistent: the companion (an `EPHEMERAL` node cannot have children).
//!   Written in the same multi-op as every takeover, handover, resign, repair and step-down: its
//!   `mzxid` is the epoch of the current master (the fencing token), its data names the
//!   designated successor while a handover is under way (empty otherwise).
//! - `<path>.participants/<session id, 16 hex digits>`, `EPHEMERAL`, one per contender of ours
//!   (created by the contender in each session before it contends; deleted when it leaves, or
//!   with its session); data = the contender's address, followed by ` listens` when the
//!   contender's own process serves that address (the fast takeover, below). Written by its
//!   owner only, except that a standby taking over from a holder proven gone deletes the
//!   holder's (in the takeover's transaction):
//!   - a takeover (create the node + write the companion + write the taker's participant node,
//!     one multi-op) and a repair of the companion (check the node's version + write the
//!     companion + write the holder's participant node) give the holder's participant node the
//!     companion's `mzxid`: *the participant node whose `mzxid` equals the companion's is the
//!     last holder that has not stepped down*;
//!   - a step-down writes the companion (a resign or a handover in the transaction that deletes
//!     the node; a holder whose node was deleted under it by taking it back), so no participant
//!     node carries the companion's `mzxid` any more: that write is the acknowledgement;
//!   - a holder's session that ends takes its participant node with it.
//!
//!   A contender that finds the node vacant with no designee takes it only if no *other*
//!   participant node carries the companion's `mzxid` (the last holder stepped down, or its
//!   session is gone); otherwise it waits (watches on that participant node, the companion and
//!   the node), with no timeout. Its takeover names the companion version it decided on, so a
//!   step-down or takeover in between makes it fail and look again. A vacancy *announced* by
//!   its last holder (a resign or a handover: the companion written, and the taker record
//!   written as `<session> released`, in the transaction that deleted the node, so the two
//!   carry the same `mzxid`, which a hand writing one node per transaction cannot forge) needs
//!   no such check and is taken at once, after one read (see `announced.rs`); a standby that
//!   stood by the holder sends that read with its takeover, in one round trip, and serves only
//!   if the read proves the step-down, else gives the node back unserved (see `poised.rs`).
//!   Participant nodes also say who is a contender (`zoorpc designate` checks the address,
//!   `zoorpc master` lists the standbys) and who is "ours": a holder whose session has no
//!   participant node (seed 004's own contender, written from its text) is foreign, unless it
//!   is the last taker on record (`<path>.participants`'s data, which only our takeovers and
//!   repairs write, and our step-downs as `<session> released`): one of ours whose participant
//!   node was deleted by hand.
//! - `<path>.participants/takers/<session id, 16 hex digits>-1/mark` and `-2/mark`,
//!   `EPHEMERAL`, empty, each in its own `CONTAINER` (`takers` is not a session id: never read as
//!   a participant): the taker's marks, created in the transaction of a session's first
//!   takeover, never removed by the session itself, gone with it. A vacancy nobody announced
//!   whose last taker's participant node is gone (its session's end, or a hand) is taken at once
//!   only when both marks are gone in one transaction (the two containers' `pzxid`s are equal):
//!   only the session's end does that, a hand deleting one node at a time, and nothing else
//!   changes those containers. Otherwise it is taken after the taker's session timeout (see
//!   `proof.rs`). ZooKeeper removes the empty containers by itself.
//!   Whose end must be proven: the last taker on record when the record carries the
//!   companion's `mzxid`; otherwise (the record deleted, emptied, forged, or the companion
//!   written since by a hand) the session the contender itself last saw holding the node (its
//!   `ephemeralOwner`: unforgeable), kept in memory with the session timeout it noted then.
//!   Unproven: taken after max(that holder's recorded session timeout, the contender's own)
//!   from when it first saw the vacancy, with one warning. In such a vacancy a designation in
//!   the companion counts only for an address a participant declares (a hand writes anything
//!   there). Outside: an operator's own multi-op removing both marks of a session declares it
//!   ended; protect the election's nodes with an ACL (`--zk-auth-file`). A designee waits
//!   for such a holder to hand over, as for any holder of ours; the fast takeover needs the
//!   holder's declaration in its participant node, so until the holder has created it again it
//!   is replaced only once its session ends.
//! - Every contender watches its own participant node and creates it again the moment it is
//!   deleted (by hand): a standby is designable again, and a master marks it with a repair of
//!   the companion (a new epoch), so its standbys can again take over fast. A standby that
//!   finds its master's participant node missing watches for it to come back.
//! - `<path>.jobs/<name>`, persistent: the last claimed run of a [`crate::MasterJob`].
//!
//! ## Guarantees
//! - At most one master at a time as seen by ZooKeeper: a contender reports
//!   [`Role::Master`] only after ZooKeeper confirmed that the node is owned by its session
//!   (`ephemeralOwner`) and holds its address, and it reports something else *before* it does
//!   anything that lets another contender take over (deleting its node).
//! - Only the master serves, with no assumption on delivery times: a master acts as master
//!   ([`MasterElection::is_master`], [`Mastership`], what `MasterGate` and [`crate::MasterJob`]
//!   ask) only within its *lease*: 3/5 of the negotiated session timeout from when it sent the
//!   last request ZooKeeper answered (a takeover, a read of the node, a renewal every quarter
//!   lease), measured on the boot clock. Its session cannot expire before one session timeout
//!   after that send, so the lease ends before any standby can take over after an expiry; a
//!   process paused past its lease (`SIGSTOP`, GC, a suspended host) refuses from the instant it
//!   runs again, before any of its tasks has run. Assumed: bounded clock *rate* drift (this
//!   host's and the ZooKeeper servers' clocks run at rates less than 5/3 apart).
//! - Connection lost: the contender stops being master at once ([`Role::Disconnected`]), without
//!   waiting for the session to expire or the lease to end. No reply within the lease: the
//!   same. Back in the same session with the node still its own, it is master again with the
//!   same epoch. Session expired: the `Session` opens a new one and the contender runs again in
//!   it.
//! - Master node deleted by someone else (`zkCli.sh delete <path>`): the holder reports
//!   [`Role::Electing`] the moment its watch says so, before it reads or tries anything, then
//!   takes the node back (its takeover is its step-down acknowledgement). The other contenders
//!   take such a vacancy only once the holder has stepped down or its session is gone (see the
//!   participant nodes above), or, when a hand removed or forged the proof (the holder's
//!   participant node, its marks, the taker record, the companion), once its lease has surely
//!   ended (a session timeout after the vacancy was first seen). A holder paused across the
//!   deletion is waited for until it resumes, its session expires, or that bound passes.
//! - A `create` whose reply was lost is resolved by reading the node and comparing its
//!   `ephemeralOwner` with this session's id.
//! - Epoch (the fencing token): the companion's `mzxid` while this contender is master, i.e. the
//!   zxid of the transaction that made it master (the node's `czxid`), or of its last repair of
//!   the companion. It only grows, within one ZooKeeper history (see below).
//! - A tampered companion (`<path>.epoch` deleted, re-created or written by hand): the master
//!   watches it and repairs it in one transaction that checks the version of its own node (so
//!   only the holder of the node can); the new `mzxid` is its new epoch, reported as a new
//!   [`Role::Master`], and fenced writes (job claims) work again under it. Until then fenced
//!   writes fail with [`Error::Fenced`] naming the cause. A designation by data still reaches
//!   the designee: the handover re-creates the companion naming it.
//! - Epochs are ZooKeeper transaction ids: they compare only within one ZooKeeper history. An
//!   ensemble whose data was wiped starts a new history: the sessions are gone, contenders run
//!   again in new ones, and the new master's epoch is smaller than the old one (warned about
//!   once per wipe). Anything that stored an epoch outside ZooKeeper (to compare fencing tokens)
//!   must be reset with it.
//! - Handover by data: the holder, seeing another address in its node, reports standby, then
//!   deletes its node and names the designee in `<path>.epoch`, atomically. The designee takes
//!   over at once (within milliseconds; until then nobody is master); the other contenders give
//!   it [`ElectionOptions::handover_grace`] before they run again, so a designee that is not
//!   running does not leave the service without a master. Designating the current master changes
//!   nothing. If the holder's session expires before it hands over, everyone runs again.
//! - A holder that is not ours (no participant node: seed 004's contender, which follows only
//!   "the data names the master") never hands over. A contender of ours named in the data of
//!   such a node takes it over in one multi-op (delete the node at the version read, create
//!   ours, write the companion: a new epoch); by the seed's own rule the holder stopped being
//!   master when the data stopped naming it. A foreign holder that crashes is replaced once its
//!   session ends. A foreign holder's address is a label: nobody is deposed for not listening.
//! - [`Fence::write`] commits only while the fence's holder is still the master (a multi-op
//!   that checks the versions of the node and of `<path>.epoch`): a deposed master's write fails
//!   with [`Error::Fenced`], whatever connection or session carries it. (This check is made by
//!   ZooKeeper at commit, so it needs no lease.)
//! - [`MasterElection::resign`] reports [`Role::Left`], then deletes the node (announcing the
//!   vacancy in `<path>.epoch`, so a standby takes over at once) and its participant node, and
//!   returns once ZooKeeper confirmed it. Dropping the election does the same in the background.
//! - A master releases the node (a hand-over on designation, a resign, a drop) only after
//!   everything it admitted as master has finished, with no timing assumption: a gate counts
//!   each request in flight ([`Mastership::admit`], an [`Admission`] held until the answer is
//!   complete) *before* it reads the role and the lease; the step-down publishes a role that is
//!   not master first (nothing new is admitted: refusals as a standby's), then waits for the
//!   count to reach zero, then releases. So no request answered as master by this process
//!   overlaps the next master's (the designee can only take over after the release).
//!   [`crate::MasterJob`] runs count too (a run is cancelled by the step-down, then released).
//!   Nothing in flight: no wait at all (a graceful hand-over costs nothing more).
//!   A request that does not finish (a hung handler) is waited for at most one lease (3/5 of
//!   the session timeout) from the step-down, then the node is released anyway, with a warning
//!   naming how many still run: the same bound a master that lost ZooKeeper instead gives (its
//!   admitted requests run on while its lease ends and its session expires), and the
//!   service is not left without a master for ever by one stuck call. Guard side effects that
//!   must not outlive mastership with the [`Fence`].
//!   Not a release: a master whose node was deleted by someone else acknowledges by taking the
//!   node back, in the same transaction, so nobody else can take over through it; it does not
//!   wait. Nor is an expiry or a disconnect: requests admitted within the lease run on.
//!
//! ## The fast takeover
//! With [`ElectionOptions::fast_takeover`] on (off by default; `zoorpc_provider::HaServer` and
//! the programs switch it on, since their own process serves the address they contend with), a
//! contender declares its address served (` listens` in its participant node), and as a
//! standby it takes over at once from a master that declared the same, once it has *proven*
//! the master's process gone:
//! - Proof is a refusal, never silence: [`FastTakeover::refusals`] TCP connects in a row to the
//!   master's own `host:port`, [`FastTakeover::spacing`] apart, each refused (RST: no process
//!   listens there). A connect that succeeds, hangs or times out proves nothing and starts the
//!   count again. The standby holds an idle TCP connection to that address between proofs: a
//!   dying process's sockets are closed by its kernel at once, which starts the proof.
//! - The takeover is one multi-op: delete the master node at the version read (and the dead
//!   holder's participant node), create ours, write the companion at the version read (a new
//!   epoch: the dead master's [`Fence`] writes fail from that instant) and our participant node.
//!   Standbys racing on the same proof: one multi-op commits, the others fail on the version
//!   and stand by for the winner.
//! - Not covered, decided by the session timeout as without it: a paused master (its kernel
//!   still completes connects to its listening socket), a dead host, a partition (silence). With
//!   `net.ipv4.tcp_abort_on_overflow = 1` a paused master whose accept queue filled would answer
//!   RST: leave it at its default, 0.
//! - Not safe against a network that *fakes* refusals: a firewall REJECTing (with RST) between a
//!   standby and a live master, or an address that routes to another host, makes the standby
//!   take over from a live master. That hand-over is unneeded but keeps the guarantees that rest
//!   on ZooKeeper (the epoch changes in the takeover, so the deposed master's fenced writes and
//!   job claims fail at once); the deposed master answers requests until the deletion of its node
//!   reaches it (its watch: milliseconds), as after an operator's `delete`.
//! - A master killed and started again on its port (before its old session ended): the new
//!   process, contending with the same address, finds the node naming that address held by
//!   another session whose participant node declared the address served. Two processes cannot
//!   listen on one address, and this one does (the condition for switching the fast takeover
//!   on), so the process that declared it is gone: it takes over at once, deposing the old
//!   session as above. (A standby's connects to that address are now accepted: no refusal
//!   proof.) Not covered: another program, not a contender, listening there; the old session's
//!   end decides then.
//! - Never on refusals alone: a holder without a participant node (seed 004's contender: its
//!   address is a label, not a promise that it serves) or one of ours that did not declare its
//!   address served (a bare `MasterElection`, whose address may name nothing) is replaced once
//!   its session ends, as before.
//!
//! ## Layout
//! - `role.rs`: [`Role`], [`RoleChange`], [`RoleChanges`] and how a role is published.
//! - `handle.rs`: [`MasterElection`] (join, resign, leave on drop), [`designate`].
//! - `campaign.rs`: the state machine behind a contender: read the node, decide, wait.
//! - `reads.rs`: what one step of the campaign reads, in one pipelined round trip.
//! - `writes/`: the campaign's transactions that change who holds the node (take over, hand
//!   over, repair the companion).
//! - `release.rs`: releasing the node (resigning).
//! - `announced.rs`: whether a vacancy was announced by its holder's step-down.
//! - `proof.rs`: the proof that the last holder of a vacancy nobody announced can no longer act
//!   as master, and the holder a standby remembers.
//! - `vacancy.rs`: a node we do not hold: stand by, wait for a handover or a step-down, or take
//!   it (also from a holder that is not ours).
//! - `hold.rs`: holding the node (its watches) and renewing the lease.
//! - `lease.rs`: the lease, the boot clock, [`Mastership`].
//! - `drain.rs`: [`Admission`]s (what a master admitted), waited for before a release.
//! - `participants.rs`: the participant nodes.
//! - `refusal.rs`: the fast takeover: [`FastTakeover`], the proof by refused connections, and
//!   standing by a master that may be proven gone.
//! - `fence.rs`: [`Fence`], writes that commit only while their holder is master.
//! - `address.rs`: the one reading of an address in the node's (or the companion's) data.
//!
//! What a process knows is what its client has seen, bounded by the lease: a process paused
//! (GC, `SIGSTOP`) for less than the lease still acts as master when it runs again, until it
//! hears that it is not (and nobody else can be master before it has stepped down or its
//! session is gone). A request admitted before a step-down runs to completion, and a release
//! waits for it (above). Guard side effects with the [`Fence`], as [`crate::master_job`] does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use zoorpc_registry::{MasterElection, Role, Session};
//! let session = Session::connect_to("127.0.0.1:2181").await?;
//! let election =
//!     MasterElection::join(&session, "/soa/master/services/HelloService:1.0.0", "127.0.0.1:9090")
//!         .await?;
//! let mut changes = election.changes();
//! while let Some(change) = changes.next().await {
//!     match change.role {
//!         Role::Master { epoch } => println!("master, epoch {epoch}"),
//!         Role::Standby { master } => println!("standby, the master is {master}"),
//!         other => println!("{other}"),
//!     }
//! #   break;
//! }
//! election.resign().await?;
//! # Ok(()) }
//! ```

mod address;
mod announced;
mod campaign;
mod drain;
mod fence;
mod handle;
mod hold;
mod lease;
pub mod participants;
mod path;
mod poised;
mod proof;
mod reads;
mod refusal;
mod release;
mod role;
mod vacancy;
mod writes;

pub use address::{is_host_port, read_address, validate_address};
pub use drain::Admission;
pub use fence::Fence;
pub use handle::{ElectionOptions, MasterElection, designate};
pub use lease::{LEASE_DENOMINATOR, LEASE_NUMERATOR, Mastership, lease_for};
pub use participants::{
    PARTICIPANTS_SUFFIX, Participant, participant_data, participant_path, participants_path,
};
pub use path::{RESERVED_SUFFIXES, validate_election_path};
pub use refusal::FastTakeover;
pub use role::{Role, RoleChange, RoleChanges};

use zookeeper_client as zk;

use crate::auth::NodeAcl;
use crate::error::{Error, Result};
use crate::plumbing::{ensure_path, parent, persistent};

/// The default election path of a service: `/soa/master/services/<service>:<version>`.
///
/// ```
/// use zoorpc_registry::default_master_path;
/// assert_eq!(default_master_path("Billing", "2.1"), "/soa/master/services/Billing:2.1");
/// ```
pub fn default_master_path(service: &str, version: &str) -> String {
    format!("/soa/master/services/{service}:{version}")
}

/// The suffix of the persistent companion node `<path>.epoch`.
pub const COMPANION_SUFFIX: &str = ".epoch";

/// The companion node of a master path: `<path>.epoch`.
///
/// ```
/// use zoorpc_registry::election::{companion_path, default_master_path};
/// let path = default_master_path("HelloService", "1.0.0");
/// assert_eq!(path, "/soa/master/services/HelloService:1.0.0");
/// assert_eq!(companion_path(&path), "/soa/master/services/HelloService:1.0.0.epoch");
/// ```
pub fn companion_path(path: &str) -> String {
    format!("{path}{COMPANION_SUFFIX}")
}

/// Creates the parents of the node and the companion `<path>.epoch`.
pub(crate) async fn prepare(client: &zk::Client, path: &str, acl: NodeAcl) -> Result<()> {
    if let Some(parent) = parent(path) {
        ensure_path(client, parent, acl).await?;
    }
    let companion = companion_path(path);
    match client.create(&companion, b"", &persistent(acl)).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => return Err(Error::zk("create", &companion, e)),
    }
    ensure_path(client, &participants::takers_path(path), acl).await
}
