using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class LogRecordTests
{
    [Fact]
    public void A_maximum_size_batch_of_logs_stays_off_the_large_object_heap()
    {
        // The array a batch request's logs are validated into (IngestApi). On the large object heap it would be freed
        // only by a gen2 collection, and until then, dead, keep its logs' strings alive through younger collections.
        var records = new LogRecord[new IngestOptions().MaxLogsPerBatchRequest];

        Assert.NotEqual(GC.MaxGeneration, GC.GetGeneration(records));
    }
}
