using System.Diagnostics;
using System.Globalization;
using System.Text;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.Bench;

[CollectionDefinition(nameof(BenchHarness), DisableParallelization = true)]
public sealed class BenchHarness;

/// <summary>
/// Runs <c>bench/run.sh --quick</c> end to end so the benchmark cannot rot unnoticed. No timing is asserted:
/// only that every scenario ran and that the rows check passed. Alone, so it does not slow the other tests.
/// </summary>
[Collection(nameof(BenchHarness))]
public sealed class BenchHarnessTests(ITestOutputHelper output)
{
    private static bool s_built;

    [Fact]
    public async Task Quick_benchmark_runs_every_scenario_and_finds_every_acknowledged_log()
    {
        var (exitCode, table, log) = await RunBenchAsync(null, "--quick");
        output.WriteLine(table);

        Assert.True(exitCode == 0, log);
        foreach (var scenario in new[]
        {
            "baseline", "baseline-loadgen", "ingest-single-32", "ingest-single-64", "ingest-single-64-ids", "ingest-batch-100",
            "ingest-batch-100-ids", "usage-daily-32", "usage-daily-64", "usage-top-32", "usage-top-64", "usage-daily-uncached",
            "usage-top-uncached", "limiter-on", "limiter-off", "ingest-single-64-unlimited", "usage-top-64-unlimited",
            "ingest-single-64-keys", "ingest-single-64-keys-10k", "ingest-noisy-neighbour", "ingest-noisy-neighbour-limited",
            "usage-endpoints-64", "usage-series-64", "usage-series-64-gzip",
            "usage-endpoints-uncached", "usage-series-uncached",
        })
        {
            Assert.Contains($"| {scenario} |", table, StringComparison.Ordinal);
        }

        Assert.Contains("Rows in PostgreSQL equal acknowledged logs after every write scenario.", log, StringComparison.Ordinal);

        // Throughput rows come from wrk, the counted runs and the noisy neighbour from LoadGen; ratios only against the
        // ceiling of the same generator.
        Assert.Equal("wrk", Cell(table, "ingest-single-64", 2));
        Assert.Equal("LoadGen", Cell(table, "ingest-noisy-neighbour", 2));
        Assert.EndsWith("%", Cell(table, "ingest-single-64", 12), StringComparison.Ordinal);
        Assert.Equal("—", Cell(table, "ingest-noisy-neighbour", 12));
        Assert.Equal("LoadGen", Cell(table, "ingest-noisy-neighbour-limited", 2));
        // The limited process keeps the product's ingest limits: the flood of 1,000-log batches far outruns them.
        Assert.Contains("(`ingest-noisy-neighbour-limited`", table, StringComparison.Ordinal);
        var limited = table[table.IndexOf("(`ingest-noisy-neighbour-limited`", StringComparison.Ordinal)..];
        Assert.Contains("429: ", limited.Split('\n').First(line => line.StartsWith("| flooder:", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("| ingest-single-64-keys-10k |", table[table.IndexOf("| many keys |", StringComparison.Ordinal)..], StringComparison.Ordinal);
        Assert.Contains("| victim: single logs | 4 |", table, StringComparison.Ordinal);

        // The CPU column is measured: serving single-event ingest costs CPU in the API, PostgreSQL and the generator, and
        // serving cached usage (a rate-limit script per request) costs CPU in Redis. (Ingest's Redis share can round to
        // 0: a busy key is decided from leased tokens.)
        var ingestCpu = CpuPerRequest(table, "ingest-single-32");
        Assert.All(new[] { ingestCpu[0], ingestCpu[1], ingestCpu[3] }, microseconds => Assert.True(microseconds > 0, table));
        Assert.True(CpuPerRequest(table, "usage-daily-32")[2] > 0, table);
    }

    private static string Cell(string table, string scenario, int column) =>
        table.Split('\n').First(line => line.StartsWith($"| {scenario} |", StringComparison.Ordinal)).Split('|')[column].Trim();

    private static double[] CpuPerRequest(string table, string scenario)
    {
        var cpuPerRequest = Cell(table, scenario, 11).Split('/').Select(value => double.Parse(value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(4, cpuPerRequest.Length);
        return cpuPerRequest;
    }

    // The tamper runs after both runs of the scenario. The counted run (LoadGen) catches a single row lost or
    // duplicated. The measured run (wrk) leaves up to one request per connection in flight, committed but uncounted,
    // so it catches only a loss larger than that: 100 rows, at 32 connections.
    [Theory]
    [InlineData("DELETE FROM logs WHERE ctid IN (SELECT ctid FROM logs LIMIT 100)", true)]
    [InlineData("INSERT INTO logs SELECT * FROM logs LIMIT 1", false)]
    public async Task A_lost_or_duplicated_log_fails_the_benchmark(string tamper, bool lost)
    {
        var (exitCode, _, log) = await RunBenchAsync(tamper, "--quick", "ingest-single-32");

        Assert.Equal(1, exitCode);
        Assert.Contains("LOST OR DUPLICATED LOGS in ingest-single-32:", log, StringComparison.Ordinal);
        if (lost)
        {
            Assert.Contains("LOST OR DUPLICATED LOGS in ingest-single-32 (wrk):", log, StringComparison.Ordinal);
        }
    }

    private static async Task<(int ExitCode, string Table, string Log)> RunBenchAsync(string? tamperSql, params string[] arguments)
    {
        var root = Path.GetDirectoryName(AppHostProcess.ProjectDirectory)!;
        var startInfo = new ProcessStartInfo("bash", [Path.Combine(root, "bench", "run.sh"), .. arguments]) { WorkingDirectory = root };
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        if (tamperSql is not null)
        {
            startInfo.Environment["TRACKER_BENCH_TAMPER_SQL"] = tamperSql;
        }

        // The sources do not change during a test run: once a benchmark here has built them, the next ones skip the
        // builds (about 27 s each even when everything is up to date).
        if (s_built)
        {
            startInfo.Environment["TRACKER_BENCH_PREBUILT"] = "1";
        }

        // The bench's servers work in a directory of this run's own, so they are found and killed whatever happens;
        // the script is not marked, since the build servers its builds start outlive it and serve other builds.
        var workRoot = TestDirectories.CreateNew("bench");
        startInfo.Environment["TRACKER_BENCH_TMPDIR"] = workRoot;
        var table = new StringBuilder();
        var log = new StringBuilder();
        try
        {
            await using var children = new ChildProcesses();
            children.AlsoWorkingIn(workRoot);
            var bench = children.Start(startInfo, onStandardOutput: line => Append(table, line), onStandardError: line => Append(log, line), mark: false);
            using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(8));
            await bench.WaitForExitAsync(deadline.Token);
            s_built |= Read(log).Contains("Warming up...", StringComparison.Ordinal);
            return (bench.ExitCode, Read(table), Read(log));
        }
        finally
        {
            TestDirectories.DeleteIfExists(workRoot);
        }

        static void Append(StringBuilder text, string line)
        {
            lock (text)
            {
                text.AppendLine(line);
            }
        }

        static string Read(StringBuilder text)
        {
            lock (text)
            {
                return text.ToString();
            }
        }
    }
}
