namespace Tracker.ApiService.Ingest;

/// <summary>
/// How a writer forms a batch: it takes whatever is queued, without waiting, until the batch holds
/// <c>maxLogs</c> logs (a request is never split, so the last one may go past it). Under light load a batch is
/// one request and is written at once; under heavy load batches grow by themselves, because more requests queue
/// while the previous batch commits. No fixed sleep anywhere.
/// </summary>
public static class BatchingPolicy
{
    /// <summary>Fills <paramref name="batch"/> from <paramref name="tryTake"/>; returns the number of logs taken.</summary>
    public static int Fill(List<PendingLogs> batch, int maxLogs, TryTake tryTake, int alreadyTaken = 0)
    {
        var logs = alreadyTaken;
        while (logs < maxLogs && tryTake(out var next))
        {
            batch.Add(next);
            logs += next.Logs.Length;
        }

        return logs;
    }

    /// <summary>Settles and removes the requests whose deadline has passed; returns how many logs they held.</summary>
    public static int ExpireOverdue(List<PendingLogs> batch, long now)
    {
        var expiredLogs = 0;
        batch.RemoveAll(pending =>
        {
            if (pending.DeadlineTimestamp > now)
            {
                return false;
            }

            pending.Settle(WriteOutcome.TimedOut);
            expiredLogs += pending.Logs.Length;
            return true;
        });
        return expiredLogs;
    }

    /// <summary>
    /// Commits <paramref name="batch"/> through <paramref name="commit"/>, which settles what it commits. When the
    /// database refuses a row (<paramref name="isRefusal"/>), the batch is split in halves until each refused
    /// request stands alone and is settled <see cref="WriteOutcome.Refused"/>: one bad row costs only its own
    /// request. Any other failure propagates; the parts committed before it are already settled, so a retry
    /// takes only the unsettled rest and nothing is written twice. Returns the refused requests.
    /// </summary>
    public static async Task<List<PendingLogs>> CommitIsolatingRefusalsAsync(
        IReadOnlyList<PendingLogs> batch, Func<IReadOnlyList<PendingLogs>, Task> commit, Func<Exception, bool> isRefusal)
    {
        var refused = new List<PendingLogs>();
        var work = new Stack<IReadOnlyList<PendingLogs>>();
        work.Push(batch);
        while (work.Count > 0)
        {
            var part = work.Pop();
            try
            {
                await commit(part);
            }
            catch (Exception exception) when (isRefusal(exception))
            {
                if (part.Count == 1)
                {
                    part[0].Settle(WriteOutcome.Refused);
                    refused.Add(part[0]);
                    continue;
                }

                var half = part.Count / 2;
                work.Push(part.Skip(half).ToList());
                work.Push(part.Take(half).ToList());
            }
        }

        return refused;
    }
}

/// <summary>Takes the next queued request, if any, without waiting.</summary>
public delegate bool TryTake([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out PendingLogs next);
