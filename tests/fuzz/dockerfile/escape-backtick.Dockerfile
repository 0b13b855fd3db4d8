# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN New-Item -ItemType Directory -Path C:\app ; `
    Set-Location C:\app ; `
    Write-Host 'cd C:\app'
WORKDIR C:\app
ADD https://example.com/tool.zip C:\tools\tool.zip
COPY app\ C:\app\
USER ContainerUser
EXPOSE 8080
ENTRYPOINT ["C:\\app\\server.exe"]
