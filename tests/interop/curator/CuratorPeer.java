import java.util.Collection;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.springframework.cloud.zookeeper.discovery.ZookeeperInstance;

/**
 * The Java side of zoorpc's Curator interop tests: Apache Curator's own service discovery
 * (curator-x-discovery), with Spring Cloud Zookeeper's payload class, as a Spring application
 * configures it.
 *
 *   CuratorPeer query ZK BASE NAME
 *       queryForInstances(NAME): one line per instance,
 *       `instance ID ADDRESS PORT SSLPORT URI gRPC_port=... weight=...` (null where unset; the
 *       payload's metadata sorted by key), then `done COUNT`
 *   CuratorPeer register ZK BASE NAME ADDRESS PORT GRPC_PORT WEIGHT SESSION_MS
 *       registers an instance as a Spring application with a gRPC server does (its web PORT as
 *       the instance's port, a Spring payload with gRPC_port and weight), prints
 *       `registered ID`, and keeps its session until killed
 */
public class CuratorPeer {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        int sessionMs = mode.equals("register") ? Integer.parseInt(args[8]) : 10000;
        CuratorFramework client = CuratorFrameworkFactory.newClient(
            args[1], sessionMs, 10000, new RetryNTimes(3, 200));
        client.start();
        if (!client.blockUntilConnected(20, java.util.concurrent.TimeUnit.SECONDS)) {
            System.err.println("error: cannot connect to ZooKeeper at " + args[1]);
            System.exit(1);
        }
        ServiceDiscovery<ZookeeperInstance> discovery = ServiceDiscoveryBuilder
            .builder(ZookeeperInstance.class)
            .client(client)
            .basePath(args[2])
            .serializer(new JsonInstanceSerializer<>(ZookeeperInstance.class))
            .build();
        discovery.start();
        if (mode.equals("query")) {
            Collection<ServiceInstance<ZookeeperInstance>> found = discovery.queryForInstances(args[3]);
            for (ServiceInstance<ZookeeperInstance> instance : found) {
                StringBuilder line = new StringBuilder("instance ")
                    .append(instance.getId()).append(' ')
                    .append(instance.getAddress()).append(' ')
                    .append(instance.getPort()).append(' ')
                    .append(instance.getSslPort()).append(' ')
                    .append(instance.buildUriSpec());
                if (instance.getPayload() != null) {
                    Map<String, String> sorted = new TreeMap<>(instance.getPayload().getMetadata());
                    sorted.forEach((k, v) -> line.append(' ').append(k).append('=').append(v));
                }
                System.out.println(line);
            }
            System.out.println("done " + found.size());
            discovery.close();
            client.close();
            return;
        }
        Map<String, String> metadata = new TreeMap<>();
        metadata.put("gRPC_port", args[6]);
        metadata.put("weight", args[7]);
        metadata.put("instance_status", "UP");
        String id = UUID.randomUUID().toString();
        ServiceInstance<ZookeeperInstance> instance = ServiceInstance.<ZookeeperInstance>builder()
            .name(args[3])
            .id(id)
            .address(args[4])
            .port(Integer.parseInt(args[5]))
            .uriSpec(new UriSpec("{scheme}://{address}:{port}"))
            .payload(new ZookeeperInstance(id, args[3], metadata))
            .build();
        discovery.registerService(instance);
        System.out.println("registered " + instance.getId());
        new CountDownLatch(1).await();
    }
}
