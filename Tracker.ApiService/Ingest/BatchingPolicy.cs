namespace Tracker.ApiService.Ingest;

/// <summary>
/// What the writer does with a batch's requests besides queueing them (<see cref="FairBacklog"/> forms batches):
/// which are overdue, and how a refused one is found.
/// </summary>
public static class BatchingPolicy
{
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
