namespace Tracker.Tests.Infrastructure;

/// <summary>
/// Where the tests keep what they create on disk: <c>TRACKER_TEST_ROOT</c> when set (<c>test.sh</c> gives every
/// run one of its own, and removes it with any server still working there), else <c>tracker-tests</c> in the
/// temporary directory (<c>$TMPDIR</c>, or <c>/tmp</c>).
/// </summary>
internal static class TestDirectories
{
    public static string Root { get; } =
        Environment.GetEnvironmentVariable("TRACKER_TEST_ROOT") is { Length: > 0 } root ? root : Path.Combine(Path.GetTempPath(), "tracker-tests");

    /// <summary>A new, empty directory under <see cref="Root"/> whose name starts with <paramref name="prefix"/>.</summary>
    public static string CreateNew(string prefix)
    {
        var directory = NewPath(prefix);
        Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>A path under <see cref="Root"/> that does not exist yet (for programs that create it themselves).</summary>
    public static string NewPath(string prefix) => Path.Combine(Root, prefix + "-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Deletes <paramref name="directory"/> if it exists; a file a dying server still writes is retried.</summary>
    public static void DeleteIfExists(string directory)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                if (Directory.Exists(directory))
                {
                    Directory.Delete(directory, recursive: true);
                }

                return;
            }
            catch (IOException) when (attempt < 5)
            {
                Thread.Sleep(200);
            }
        }
    }
}
