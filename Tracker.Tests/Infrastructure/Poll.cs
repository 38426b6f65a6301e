namespace Tracker.Tests.Infrastructure;

/// <summary>Waits for something that happens in the background, with a timeout.</summary>
public static class Poll
{
    /// <summary>Waits until <paramref name="condition"/> holds, polling; returns how long it took, or throws at the timeout.</summary>
    public static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            if (stopwatch.Elapsed > timeout)
            {
                throw new TimeoutException($"The condition did not hold within {timeout.TotalSeconds:F1} s.");
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(50));
        }

        return stopwatch.Elapsed;
    }

    /// <summary>Waits until the API has logged a line containing <paramref name="text"/>.</summary>
    public static Task<TimeSpan> UntilLoggedAsync(CapturedLogs logs, string text, TimeSpan timeout) =>
        UntilAsync(() => Task.FromResult(logs.Lines.Any(line => line.Contains(text, StringComparison.Ordinal))), timeout, TimeSpan.FromMilliseconds(100));
}
