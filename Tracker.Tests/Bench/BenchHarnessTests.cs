using System.Diagnostics;
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
        var root = Path.GetDirectoryName(AppHostProcess.ProjectDirectory)!;
        var startInfo = new ProcessStartInfo("bash", [Path.Combine(root, "bench", "run.sh"), "--quick"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = root,
        };
        startInfo.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");

        using var bench = Process.Start(startInfo)!;
        var table = bench.StandardOutput.ReadToEndAsync();
        var log = bench.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await bench.WaitForExitAsync(deadline.Token);
        output.WriteLine(await table);

        Assert.True(bench.ExitCode == 0, await log);
        foreach (var scenario in new[] { "baseline", "ingest-single-32", "ingest-single-64", "ingest-batch-100" })
        {
            Assert.Contains($"| {scenario} |", await table, StringComparison.Ordinal);
        }

        Assert.Contains("Rows in PostgreSQL equal acknowledged logs after every write scenario.", await log, StringComparison.Ordinal);
    }
}
