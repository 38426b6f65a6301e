namespace Tracker.Tests.Infrastructure;

/// <summary>Waits for something that happens in the background, with a timeout.</summary>
public static class Poll
{
    /// <summary>
    /// Waits until <paramref name="condition"/> holds, polling; returns how long it took. A condition that throws
    /// has not held yet (the state may still be on its way): polling goes on, and at the timeout the last exception
    /// is reported with it.
    /// </summary>
    public static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        Exception? lastException = null;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return stopwatch.Elapsed;
                }

                lastException = null;
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                lastException = exception;
            }

            if (stopwatch.Elapsed > timeout)
            {
                throw new TimeoutException(
                    $"The condition did not hold within {timeout.TotalSeconds:F1} s"
                    + (lastException is null ? "." : $"; its last attempt threw {lastException.GetType().Name}: {lastException.Message}"),
                    lastException);
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(50));
        }
    }

    /// <summary>Waits until the API has logged a line containing <paramref name="text"/>.</summary>
    public static Task<TimeSpan> UntilLoggedAsync(CapturedLogs logs, string text, TimeSpan timeout) =>
        UntilAsync(() => Task.FromResult(logs.Lines.Any(line => line.Contains(text, StringComparison.Ordinal))), timeout, TimeSpan.FromMilliseconds(100));
}
