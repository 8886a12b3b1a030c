<#
.SYNOPSIS
    Writes the list of files under a NAS folder as UTF-8 text, one full path a line, for
    `pacsindex index --list FILE`.

.DESCRIPTION
    Use it when the computer running pacsindex cannot reach the share itself, or to list a huge archive
    with Windows' own SMB client. Run it on any Windows PC that can open the share, copy the list across,
    then: pacsindex index --list nas-files.txt  (pacsindex opens each listed path, so the paths must be
    reachable from the pacsindex computer too: a UNC path or the same drive letter).

    -Mode Robocopy (default) lists fastest over a network. -Mode GetChildItem needs nothing but
    PowerShell. Both skip junctions and symbolic links (they can loop back up the tree), never copy or
    change anything, and stream: the list is never held in memory.

.EXAMPLE
    .\Export-NasFileList.ps1 -Root '\\nas\Image Archiving' -Out C:\Temp\nas-files.txt
.EXAMPLE
    .\Export-NasFileList.ps1 -Root 'Z:\Image Archiving\2019' -Out .\2019.txt -Mode GetChildItem
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Root,
    [Parameter(Mandatory)] [string] $Out,
    [ValidateSet('Robocopy', 'GetChildItem')] [string] $Mode = 'Robocopy'
)
$ErrorActionPreference = 'Stop'
$Root = $Root.TrimEnd('\')
$OutPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Out)
# UTF-8 without BOM: Windows PowerShell's `>` would write UTF-16, and its -Encoding UTF8 adds a BOM.
$writer = New-Object System.IO.StreamWriter($OutPath, $false, (New-Object System.Text.UTF8Encoding($false)))
$count = 0
try {
    if ($Mode -eq 'Robocopy') {
        # /L lists without copying (NULL is a dummy destination); /FP full paths; /NDL /NC /NS /NJH /NJS
        # leave only file lines; /XJ skips junctions; /R:0 /W:0 do not wait on unreadable folders.
        # /UNILOG writes the log as UTF-16, so names in any script survive (the console would not).
        $log = [System.IO.Path]::GetTempFileName()
        robocopy $Root NULL /L /S /FP /NDL /NC /NS /NJH /NJS /NP /XJ /R:0 /W:0 "/UNILOG:$log" | Out-Null
        if ($LASTEXITCODE -ge 8) { Write-Warning "robocopy reported errors (exit $LASTEXITCODE): see $log" }
        Get-Content -LiteralPath $log -Encoding Unicode | ForEach-Object {
            $path = $_.Trim()
            # File lines start with the root; error lines ("... ERROR 5 ... Scanning Source Directory") do not.
            if ($path.StartsWith($Root, [StringComparison]::OrdinalIgnoreCase)) {
                $writer.WriteLine($path); $count++
            }
        }
        if ($LASTEXITCODE -lt 8) { Remove-Item -LiteralPath $log }
    } else {
        # -Attributes !ReparsePoint: do not descend into junctions or symbolic links. Unreadable folders
        # are reported as warnings and skipped.
        Get-ChildItem -LiteralPath $Root -Recurse -File -Force -Attributes !ReparsePoint `
                      -ErrorAction SilentlyContinue -ErrorVariable problems |
            ForEach-Object { $writer.WriteLine($_.FullName); $count++ }
        foreach ($p in $problems) { Write-Warning "skipped: $($p.TargetObject): $($p.Exception.Message)" }
    }
} finally {
    $writer.Close()
}
Write-Host "$count files listed in $OutPath. Next: pacsindex index --list `"$OutPath`""
