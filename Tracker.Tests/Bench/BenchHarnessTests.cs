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
    [Fact]
    public async Task Quick_benchmark_runs_every_scenario_and_finds_every_acknowledged_log()
    {
        var (exitCode, table, log) = await RunBenchAsync(null, "--quick");
        output.WriteLine(table);

        Assert.True(exitCode == 0, log);
        foreach (var scenario in new[]
        {
            "baseline", "ingest-single-32", "ingest-single-64", "ingest-batch-100",
            "usage-daily-32", "usage-daily-64", "usage-top-32", "usage-top-64", "usage-daily-uncached", "usage-top-uncached",
            "limiter-on", "limiter-off", "ingest-single-64-unlimited", "usage-top-64-unlimited", "ingest-single-64-keys",
        })
        {
            Assert.Contains($"| {scenario} |", table, StringComparison.Ordinal);
        }

        Assert.Contains("Rows in PostgreSQL equal acknowledged logs after every write scenario.", log, StringComparison.Ordinal);

        // The CPU column is measured: serving single-event ingest costs CPU in the API and PostgreSQL, and serving
        // cached usage (a rate-limit script per request) costs CPU in Redis. (Ingest's Redis share can round to 0:
        // a busy key is decided from leased tokens.)
        Assert.All(CpuPerRequest(table, "ingest-single-32")[..2], microseconds => Assert.True(microseconds > 0, table));
        Assert.True(CpuPerRequest(table, "usage-daily-32")[2] > 0, table);
    }

    private static double[] CpuPerRequest(string table, string scenario)
    {
        var row = table.Split('\n').Single(line => line.StartsWith($"| {scenario} |", StringComparison.Ordinal));
        var cpuPerRequest = row.Split('|')[10].Split('/').Select(value => double.Parse(value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3, cpuPerRequest.Length);
        return cpuPerRequest;
    }

    [Theory]
    [InlineData("DELETE FROM logs WHERE ctid = (SELECT ctid FROM logs LIMIT 1)")]
    [InlineData("INSERT INTO logs SELECT * FROM logs LIMIT 1")]
    public async Task A_lost_or_duplicated_log_fails_the_benchmark(string tamper)
    {
        var (exitCode, _, log) = await RunBenchAsync(tamper, "--quick", "ingest-single-32");

        Assert.Equal(1, exitCode);
        Assert.Contains("LOST OR DUPLICATED LOGS in ingest-single-32", log, StringComparison.Ordinal);
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
            using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await bench.WaitForExitAsync(deadline.Token);
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
