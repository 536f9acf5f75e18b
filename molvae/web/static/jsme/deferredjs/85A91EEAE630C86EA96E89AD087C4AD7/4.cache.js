$wnd.jsme.runAsyncCallback4('x(706,595,Ys);_.Zd=function(){this.a.Mc&&p4(this.a.Mc);this.a.Mc=new u4(1,this.a)};U(R0)(4);\n//@ sourceURL=4.js\n')
