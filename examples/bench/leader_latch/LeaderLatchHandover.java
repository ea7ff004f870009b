// Curator's LeaderLatch under the same measurement as `bench handover`: two clients (two
// ZooKeeper sessions), one latch each on one path; each round the leader closes its latch and
// the time runs from the call of close() until the other latch's isLeader() callback. The
// closed one then joins again with a new latch (behind the leader). Prints p50 and p99 over
// the rounds after 10 warm-up rounds, and one JSON line.
//
// javac -cp "/usr/share/java/*" -d /tmp/latch examples/bench/leader_latch/LeaderLatchHandover.java
// java -cp "/tmp/latch:/usr/share/java/*" LeaderLatchHandover 127.0.0.1:2181 200

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.RetryOneTime;

public class LeaderLatchHandover {
    static final int WARMUP = 10;

    /** A latch whose isLeader() callback time (System.nanoTime) is queued. */
    static LeaderLatch latch(CuratorFramework client, String path, String id,
                             BlockingQueue<Long> elected) throws Exception {
        LeaderLatch latch = new LeaderLatch(client, path, id);
        latch.addListener(new LeaderLatchListener() {
            public void isLeader() { elected.offer(System.nanoTime()); }
            public void notLeader() {}
        });
        latch.start();
        return latch;
    }

    public static void main(String[] args) throws Exception {
        String connect = args.length > 0 ? args[0] : "127.0.0.1:2181";
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 200;
        String path = "/zoorpc-bench/latch-" + ProcessHandle.current().pid();
        CuratorFramework[] clients = new CuratorFramework[2];
        for (int i = 0; i < 2; i++) {
            clients[i] = CuratorFrameworkFactory.newClient(connect, 10_000, 5_000, new RetryOneTime(100));
            clients[i].start();
            clients[i].blockUntilConnected(10, TimeUnit.SECONDS);
        }
        List<BlockingQueue<Long>> elected = List.of(new ArrayBlockingQueue<>(1024), new ArrayBlockingQueue<>(1024));
        LeaderLatch[] latches = new LeaderLatch[2];
        latches[0] = latch(clients[0], path, "a", elected.get(0));
        if (!latches[0].await(10, TimeUnit.SECONDS)) throw new IllegalStateException("a is not leader");
        latches[1] = latch(clients[1], path, "b", elected.get(1));
        waitParticipants(latches[1], 2);
        int leader = 0;
        List<Double> samples = new ArrayList<>();
        for (int round = 0; round < rounds + WARMUP; round++) {
            int standby = 1 - leader;
            elected.get(standby).clear();
            long t = System.nanoTime();
            latches[leader].close();
            Long at = elected.get(standby).poll(5, TimeUnit.SECONDS);
            if (at == null) throw new IllegalStateException("round " + round + ": no new leader within 5 s");
            if (round >= WARMUP) samples.add((at - t) / 1e6);
            latches[leader] = latch(clients[leader], path, "r" + round, elected.get(leader));
            waitParticipants(latches[standby], 2);
            leader = standby;
        }
        for (LeaderLatch latch : latches) latch.close();
        for (CuratorFramework client : clients) client.close();
        Collections.sort(samples);
        double p50 = quantile(samples, 0.5), p99 = quantile(samples, 0.99);
        System.out.printf("LeaderLatch handover over %d rounds (after %d warm-up rounds), ZooKeeper %s: close -> other is leader p50 %.3f ms p99 %.3f ms%n",
            rounds, WARMUP, connect, p50, p99);
        System.out.printf("{\"scenario\":\"leader_latch_handover\",\"rounds\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f}%n", rounds, p50, p99);
    }

    static void waitParticipants(LeaderLatch latch, int n) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (latch.getParticipants().size() < n) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("no second participant");
            Thread.sleep(1);
        }
    }

    /** Nearest-rank quantile of sorted samples, as the Rust bench computes it. */
    static double quantile(List<Double> sorted, double q) {
        int rank = Math.max(1, Math.min(sorted.size(), (int) Math.ceil(q * sorted.size())));
        return sorted.get(rank - 1);
    }
}
