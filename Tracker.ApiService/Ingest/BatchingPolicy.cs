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

    /// <summary>Removes the requests whose deadline has passed from <paramref name="batch"/> and returns them.</summary>
    public static List<PendingLogs> TakeOverdue(List<PendingLogs> batch, long now)
    {
        var overdue = new List<PendingLogs>();
        batch.RemoveAll(pending =>
        {
            if (pending.DeadlineTimestamp > now)
            {
                return false;
            }

            overdue.Add(pending);
            return true;
        });
        return overdue;
    }

    /// <summary>
    /// Finds the requests the database refuses among <paramref name="requests"/>, writing every other one exactly
    /// once. <paramref name="tryWrite"/> writes the requests <c>[start, start + count)</c> and returns false,
    /// having undone that part (a savepoint), when the database refuses a row of it. A refused part is halved until
    /// each refused request stands alone, so one bad request among n costs about 2·log2(n) small writes, and
    /// every accepted request is written in exactly one successful part. It starts from the halves of the batch,
    /// which the caller has just seen refused whole. Returns the refused indexes, ascending.
    /// </summary>
    public static async Task<List<int>> IsolateRefusalsAsync(int requests, Func<int, int, Task<bool>> tryWrite)
    {
        var refused = new List<int>();
        var work = new Stack<(int Start, int Count)>();
        // Called because the whole batch was just refused: start from its halves, not from the whole again.
        if (requests == 1)
        {
            work.Push((0, 1));
        }
        else
        {
            work.Push((requests / 2, requests - requests / 2));
            work.Push((0, requests / 2));
        }
        while (work.Count > 0)
        {
            var (start, count) = work.Pop();
            if (count == 0 || await tryWrite(start, count))
            {
                continue;
            }

            if (count == 1)
            {
                refused.Add(start);
                continue;
            }

            var half = count / 2;
            work.Push((start + half, count - half));
            work.Push((start, half));
        }

        return refused;
    }
}

/// <summary>Takes the next queued request, if any, without waiting.</summary>
public delegate bool TryTake([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out PendingLogs next);
