using System.Globalization;
using StackExchange.Redis;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// A throwaway Redis Cluster from the machine's own redis-server: three masters, each with one replica, on free
/// loopback ports, joined with <c>redis-cli --cluster create</c> — the shape of a clustered managed Redis (keys
/// sharded over masters by hash slot). Nodes can be killed and restarted, so tests can fail a master over.
/// </summary>
public sealed class RedisClusterTestServer : IAsyncDisposable
{
    private const int Masters = 3;
    private static readonly TimeSpan FormTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A node is judged down after this long; a replica then takes over its master's slots.</summary>
    public static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(1);

    private readonly List<RedisTestServer> _nodes;

    private RedisClusterTestServer(List<RedisTestServer> nodes) => _nodes = nodes;

    public IReadOnlyList<RedisTestServer> Nodes => _nodes;

    /// <summary>Every node's address (as a client of a managed cluster would list its seed nodes).</summary>
    public string ConnectionString =>
        string.Join(',', _nodes.Select(node => $"127.0.0.1:{node.Port}")) + ",abortConnect=false";

    public static async Task<RedisClusterTestServer> StartNewAsync()
    {
        var starts = Enumerable.Range(0, Masters * 2).Select(_ => RedisTestServer.StartNewAsync(ClusterArguments)).ToList();
        try
        {
            await Task.WhenAll(starts);
        }
        catch
        {
            foreach (var start in starts.Where(start => start.IsCompletedSuccessfully))
            {
                await start.Result.DisposeAsync();
            }

            throw;
        }

        var cluster = new RedisClusterTestServer(starts.Select(start => start.Result).ToList());
        try
        {
            var redisCli = Path.Combine(Path.GetDirectoryName(RedisServerPath())!, "redis-cli");
            await ProcessRunner.RunAsync(
                File.Exists(redisCli) ? redisCli : "redis-cli",
                ["--cluster", "create", .. cluster._nodes.Select(node => $"127.0.0.1:{node.Port}"), "--cluster-replicas", "1", "--cluster-yes"],
                FormTimeout);
            await cluster.WaitUntilServingAsync(FormTimeout);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The node serving <paramref name="key"/>'s hash slot as master right now, and its replicas.</summary>
    public async Task<(RedisTestServer Master, IReadOnlyList<RedisTestServer> Replicas)> NodesOfAsync(RedisKey key)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(ConnectionString);
        var master = connection.GetServer(connection.GetEndPoints()[0]).ClusterConfiguration!.GetBySlot(key)!;
        return (NodeAt(master.EndPoint), [.. master.Children.Select(replica => NodeAt(replica.EndPoint))]);
    }

    private RedisTestServer NodeAt(System.Net.EndPoint? endPoint) =>
        _nodes.Single(node => endPoint is System.Net.IPEndPoint ip && ip.Port == node.Port);

    /// <summary>Waits until every live node sees the cluster as whole (all 16,384 slots served by live masters).</summary>
    public async Task WaitUntilServingAsync(TimeSpan timeout)
    {
        await Poll.UntilAsync(async () =>
        {
            foreach (var node in _nodes.Where(node => node.IsRunning))
            {
                await using var connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{node.Port},abortConnect=false");
                var info = (string)(await connection.GetServer($"127.0.0.1:{node.Port}").ExecuteAsync("CLUSTER", "INFO"))!;
                if (!info.Contains("cluster_state:ok", StringComparison.Ordinal)
                    || !info.Contains("cluster_slots_ok:16384", StringComparison.Ordinal))
                {
                    return false;
                }
            }

            return true;
        }, timeout);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private static string RedisServerPath() =>
        Tracker.AppHost.Infrastructure.LocalServerBinaries.Find(null, Environment.GetEnvironmentVariable("TRACKER_REDIS_SERVER")).RedisServer
        ?? throw new InvalidOperationException("redis-server is not installed; run ./test.sh, which installs it.");

    private static IReadOnlyList<string> ClusterArguments() =>
    [
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-port", FreePort.Next().ToString(CultureInfo.InvariantCulture),
        "--cluster-node-timeout", ((long)NodeTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        // A replica takes over however long it was cut off: the tests kill masters on purpose.
        "--cluster-replica-validity-factor", "0",
        // The masters still up keep serving their slots while one is down, as a managed cluster's nodes do.
        "--cluster-require-full-coverage", "no",
    ];
}
