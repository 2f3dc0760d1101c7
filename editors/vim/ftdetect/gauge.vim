" gaugedsl: *.gauge files
autocmd BufRead,BufNewFile *.gauge setfiletype gauge
