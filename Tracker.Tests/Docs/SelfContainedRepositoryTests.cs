using System.Text.RegularExpressions;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Docs;

/// <summary>
/// The repository stands on its own: a person who clones it can follow every link in it, and no file leans on
/// notes kept elsewhere on the development machines.
/// </summary>
public sealed partial class SelfContainedRepositoryTests
{
    // Files the development machines keep beside the repository, never in it. Spelled in pieces, so that this
    // file does not name them itself and is searched like every other.
    private static readonly string[] OutsideReferences =
        [.. new[] { "../", "/work/" }.Select(at => at + "shared"), .. new[] { "PLATFORM", "STYLE" }.Select(name => name + ".md")];

    [Fact]
    public async Task Every_markdown_link_leads_to_a_file_inside_the_repository()
    {
        var root = RepositoryRoot();
        var broken = new List<string>();
        foreach (var file in (await RepositoryFilesAsync(root)).Where(file => file.EndsWith(".md", StringComparison.Ordinal)))
        {
            foreach (var (line, target) in MarkdownLinks(await File.ReadAllLinesAsync(Path.Combine(root, file))))
            {
                if (Problem(root, file, target) is { } problem)
                {
                    broken.Add($"{file}:{line}: {target} ({problem})");
                }
            }
        }

        Assert.True(broken.Count == 0, "Links that leave the repository or lead nowhere:\n" + string.Join('\n', broken));
    }

    [Fact]
    public async Task No_file_refers_to_notes_outside_the_repository()
    {
        var root = RepositoryRoot();
        var found = new List<string>();
        foreach (var file in await RepositoryFilesAsync(root))
        {
            var bytes = await File.ReadAllBytesAsync(Path.Combine(root, file));
            if (Array.IndexOf(bytes, (byte)0) >= 0)
            {
                continue; // Not text (an image).
            }

            var lines = System.Text.Encoding.UTF8.GetString(bytes).Split('\n');
            for (var index = 0; index < lines.Length; index++)
            {
                found.AddRange(OutsideReferences
                    .Where(reference => lines[index].Contains(reference, StringComparison.Ordinal))
                    .Select(reference => $"{file}:{index + 1}: {reference}"));
            }
        }

        Assert.True(found.Count == 0, "References to files outside the repository:\n" + string.Join('\n', found));
    }

    /// <summary>Why <paramref name="target"/>, linked from <paramref name="file"/>, is broken; null when it is not.</summary>
    private static string? Problem(string root, string file, string target)
    {
        if (UrlScheme().IsMatch(target) || target.StartsWith('#'))
        {
            return null; // A web address, or a heading of the same page.
        }

        var path = Uri.UnescapeDataString(target.Split('#', '?')[0]);
        // GitHub reads a leading slash as the repository's root.
        var resolved = Path.GetFullPath(path.StartsWith('/')
            ? Path.Combine(root, path.TrimStart('/'))
            : Path.Combine(root, Path.GetDirectoryName(file) ?? string.Empty, path));
        if (!resolved.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return "outside the repository";
        }

        return File.Exists(resolved) || Directory.Exists(resolved) ? null : "no such file";
    }

    /// <summary>Inline links and images, link definitions and HTML <c>src</c>/<c>href</c>, outside code blocks.</summary>
    private static IEnumerable<(int Line, string Target)> MarkdownLinks(string[] lines)
    {
        var inCodeBlock = false;
        for (var index = 0; index < lines.Length; index++)
        {
            if (lines[index].TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inCodeBlock = !inCodeBlock;
                continue;
            }

            if (inCodeBlock)
            {
                continue;
            }

            foreach (Match match in LinkTarget().Matches(lines[index]))
            {
                yield return (index + 1, match.Groups["target"].Value);
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Tracker.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Tracker.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The repository's files, committed or not, without what .gitignore leaves out (builds, results).</summary>
    private static async Task<IReadOnlyList<string>> RepositoryFilesAsync(string root)
    {
        var output = await ProcessRunner.RunAsync(
            "git", ["ls-files", "--cached", "--others", "--exclude-standard"], TimeSpan.FromSeconds(30), root);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(file => File.Exists(Path.Combine(root, file)))];
    }

    [GeneratedRegex(@"^[a-z][a-z0-9+.-]*:", RegexOptions.IgnoreCase)]
    private static partial Regex UrlScheme();

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)(?:\s+""[^""]*"")?\)|^\s*\[[^\]]+\]:\s*(?<target>\S+)|(?:src|href)=""(?<target>[^""]+)""")]
    private static partial Regex LinkTarget();
}
